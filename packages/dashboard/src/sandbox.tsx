/** One sandbox: facts and actions, live graphs, steps, events, logs, network, ports, terminal. */
import { useRef, useState } from 'preact/hooks';
import { api, ApiError, describe, type HistoryPoint, type Sandbox } from './api.js';
import { age, bytes, expiry, labels, percent } from './format.js';
import { useEvents, usePoll } from './live.js';
import { Actions } from './actions.js';
import { Chart } from './chart.js';
import { Events, Logs, Network, Ports, Steps } from './panels.js';
import { WebTerminal } from './terminal.js';

const WINDOW_MS = 15 * 60_000;

/** Bytes per second between consecutive cumulative counters. */
function rate(points: HistoryPoint[], key: 'rxBytes' | 'txBytes'): (number | null)[] {
  return points.map((p, i) => {
    const prev = points[i - 1];
    const a = prev?.[key];
    const b = p[key];
    if (!prev || a === null || a === undefined || b === null || b <= 0 || p.at <= prev.at) return null;
    return Math.max(0, ((b - a) * 1000) / (p.at - prev.at));
  });
}

export function SandboxPage({ id }: { id: string }) {
  const [sb, setSb] = useState<Sandbox | null>(null);
  const [gone, setGone] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [points, setPoints] = useState<HistoryPoint[]>([]);
  const [terminal, setTerminal] = useState(false);
  const load = async () => {
    try {
      const s = await api<Sandbox>('GET', `/v1/sandboxes/${id}`);
      setSb(s);
      if (s.state === 'destroyed') setGone('This sandbox was destroyed.');
      setError(null);
    } catch (err) {
      if (err instanceof ApiError && err.code === 'SANDBOX_NOT_FOUND') setGone('This sandbox was destroyed, or never existed (or is not yours).');
      else setError(describe(err));
    }
  };
  const events = useEvents(() => void load(), id, 500);
  usePoll(load, 5000, [id]);
  const lastAt = useRef(0);
  usePoll(
    async () => {
      if (gone) return;
      const r = await api<{ points: HistoryPoint[] }>('GET', `/v1/sandboxes/${id}/stats/history?after=${lastAt.current}`);
      const newest = r.points.at(-1);
      if (!newest) return;
      lastAt.current = newest.at;
      setPoints((old) => [...old, ...r.points].filter((p) => p.at >= Date.now() - WINDOW_MS));
    },
    2000,
    [id, gone],
  );
  const live = !gone && (sb?.state === 'running' || sb?.state === 'paused');
  const times = points.map((p) => p.at);
  return (
    <section aria-labelledby="sb-h">
      <p>
        <a href="#/">← All sandboxes</a>
      </p>
      <h1 id="sb-h">
        Sandbox <code>{id}</code>
      </h1>
      {gone && (
        <p role="alert" class="gone">
          {gone}
        </p>
      )}
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {sb && (
        <>
          <dl class="facts">
            <dt>State</dt>
            <dd>
              <span class={`state state-${sb.state}`}>{sb.state}</span>
              {sb.step && ` (${sb.step})`}
              {sb.error && <span class="error">{` ${sb.error.code}: ${sb.error.message}`}</span>}
            </dd>
            <dt>Template</dt>
            <dd>{sb.spec.template ?? 'default'}</dd>
            <dt>Shape</dt>
            <dd>{`${sb.spec.vcpus} vCPU, ${sb.spec.memoryMiB} MiB, ${sb.spec.diskGiB} GiB disk`}</dd>
            <dt>Age</dt>
            <dd>{age(sb.createdAt)}</dd>
            <dt>Expires</dt>
            <dd>{expiry(sb.expiresAt)}</dd>
            <dt>Labels</dt>
            <dd>{labels(sb.spec.labels) || '–'}</dd>
            {sb.tenant !== undefined && (
              <>
                <dt>Tenant</dt>
                <dd>{sb.tenant ?? 'admin'}</dd>
              </>
            )}
          </dl>
          {!gone && <Actions sandbox={sb} onDone={() => void load()} />}
        </>
      )}
      <section aria-labelledby="graphs-h">
        <h2 id="graphs-h">Resources (last 15 minutes)</h2>
        <div class="charts">
          <Chart id="chart-cpu" title="CPU (VMM, % of one core)" times={times} series={[{ label: 'CPU', color: '#1f5fbf', values: points.map((p) => p.cpuPercent) }]} unit={percent} />
          <Chart
            id="chart-mem"
            title="Memory"
            times={times}
            series={[
              { label: 'guest used', color: '#2a7a2a', values: points.map((p) => p.memUsedBytes) },
              { label: 'VMM RSS', color: '#8a4b00', values: points.map((p) => p.rssBytes) },
            ]}
            unit={bytes}
          />
          <Chart
            id="chart-net"
            title="Network (bytes/s)"
            times={times}
            series={[
              { label: 'rx', color: '#6b2fa0', values: rate(points, 'rxBytes') },
              { label: 'tx', color: '#b0306a', values: rate(points, 'txBytes') },
            ]}
            unit={(v) => `${bytes(v)}/s`}
          />
        </div>
      </section>
      {!gone && (
        <section aria-labelledby="term-h">
          <h2 id="term-h">Terminal</h2>
          {terminal ? (
            <WebTerminal id={id} />
          ) : (
            <button type="button" disabled={sb?.state !== 'running'} onClick={() => setTerminal(true)}>
              Open terminal
            </button>
          )}
        </section>
      )}
      <Steps events={events} />
      <Events events={events} />
      <Logs id={id} />
      <Network id={id} live={live} />
      <Ports id={id} live={live} />
    </section>
  );
}

