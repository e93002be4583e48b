/** Sections of the sandbox page: creation steps, events, guest logs, network, ports. */
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, describe, follow, type KilnEvent } from './api.js';
import { bytes, duration, time } from './format.js';
import { usePoll } from './live.js';

export function Steps({ events }: { events: KilnEvent[] }) {
  const steps = events.filter((e) => e.type === 'step');
  const total = steps.reduce((s, e) => s + Number(e.data.durationMs ?? 0), 0);
  return (
    <section aria-labelledby="steps-h">
      <h2 id="steps-h">Creation steps</h2>
      {steps.length === 0 ? (
        <p>No steps recorded (yet).</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Step</th>
              <th scope="col">Duration</th>
            </tr>
          </thead>
          <tbody>
            {steps.map((e) => (
              <tr>
                <td>{String(e.data.step)}</td>
                <td>{`${Number(e.data.durationMs ?? 0)} ms`}</td>
              </tr>
            ))}
            <tr>
              <th scope="row">total</th>
              <td>{`${total} ms`}</td>
            </tr>
          </tbody>
        </table>
      )}
    </section>
  );
}

export function Events({ events }: { events: KilnEvent[] }) {
  return (
    <section aria-labelledby="events-h">
      <h2 id="events-h">Events</h2>
      <ol class="events" tabIndex={0} aria-label="Events of this sandbox">
        {events.slice(-50).map((e) => (
          <li>
            <time>{time(e.at)}</time> <strong>{e.type}</strong> <code>{JSON.stringify(e.data)}</code>
          </li>
        ))}
      </ol>
    </section>
  );
}

export function Logs({ id }: { id: string }) {
  const [service, setService] = useState('console');
  const [lines, setLines] = useState<string[]>([]);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setLines([]);
    setError(null);
    const ctl = new AbortController();
    const q = new URLSearchParams({ service, tail: '200', follow: 'true' });
    follow(`/v1/sandboxes/${id}/logs?${q}`, (l) => setLines((old) => [...old.slice(-499), l]), ctl.signal).catch((err: unknown) => {
      if (!ctl.signal.aborted) setError(describe(err));
    });
    return () => ctl.abort();
  }, [id, service]);
  return (
    <section aria-labelledby="logs-h">
      <h2 id="logs-h">Guest logs</h2>
      <label for="log-service">Service </label>
      <select id="log-service" value={service} onChange={(e) => setService((e.target as HTMLSelectElement).value)}>
        <option value="console">console</option>
        <option value="dockerd">dockerd</option>
        <option value="agent">agent</option>
      </select>
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <pre class="logs" role="log" tabIndex={0} aria-label={`${service} log`}>
        {lines.join('\n')}
      </pre>
    </section>
  );
}

interface Flow {
  verdict: string;
  reason: string | null;
  protocol: string;
  dst: string;
  dstPort: number | null;
  lastSeen: string;
  bytesOut: number;
  bytesIn: number;
}

export function Network({ id, live }: { id: string; live: boolean }) {
  const [net, setNet] = useState<{ address: string; policy: unknown } | null>(null);
  const [flows, setFlows] = useState<{ counters: Record<string, number>; flows: Flow[] } | null>(null);
  const [error, setError] = useState<string | null>(null);
  usePoll(
    async () => {
      if (!live) return;
      try {
        setNet(await api('GET', `/v1/sandboxes/${id}/network`));
        setFlows(await api('GET', `/v1/sandboxes/${id}/network/flows?limit=50`));
        setError(null);
      } catch (err) {
        setError(describe(err));
      }
    },
    5000,
    [id, live],
  );
  return (
    <section aria-labelledby="net-h">
      <h2 id="net-h">Network</h2>
      {error && <p class="error">{error}</p>}
      {net && (
        <p>
          Address <code>{net.address}</code>. Policy: <code>{JSON.stringify(net.policy)}</code>
        </p>
      )}
      {flows && (
        <>
          <p>{`Out ${bytes(flows.counters.bytesOut)}, in ${bytes(flows.counters.bytesIn)}, dropped ${flows.counters.packetsDropped ?? 0} packets (${bytes(flows.counters.bytesDropped)}).`}</p>
          <table>
            <caption>Flows (most recent first)</caption>
            <thead>
              <tr>
                {['Verdict', 'Protocol', 'Destination', 'Reason', 'Out', 'In', 'Last seen'].map((h) => (
                  <th scope="col">{h}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {flows.flows.map((f) => (
                <tr class={f.verdict === 'drop' ? 'dropped' : ''}>
                  <td>{f.verdict === 'drop' ? 'dropped' : 'accepted'}</td>
                  <td>{f.protocol}</td>
                  <td>{`${f.dst}${f.dstPort === null ? '' : `:${f.dstPort}`}`}</td>
                  <td>{f.reason ?? ''}</td>
                  <td>{bytes(f.bytesOut)}</td>
                  <td>{bytes(f.bytesIn)}</td>
                  <td>{duration(Date.now() - Date.parse(f.lastSeen))} ago</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}

interface Port {
  port: number;
  public: boolean;
  url: string | null;
}

/** A private port's link is signed on demand (GET …/ports/:port/url, valid one hour). */
function PortLink({ id, p }: { id: string; p: Port }) {
  const [signed, setSigned] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  if (p.url === null) return <span>{`port ${p.port} (kilnd runs no proxy listener)`}</span>;
  if (p.public)
    return (
      <a href={p.url} target="_blank" rel="noopener noreferrer">{`port ${p.port} (public)`}</a>
    );
  const sign = async () => {
    try {
      setSigned((await api<{ url: string | null }>('GET', `/v1/sandboxes/${id}/ports/${p.port}/url?ttl=3600`)).url);
    } catch (err) {
      setError(describe(err));
    }
  };
  return (
    <>
      {signed ? (
        <a href={signed} target="_blank" rel="noopener noreferrer">{`port ${p.port} (signed link, 1 h)`}</a>
      ) : (
        <button type="button" onClick={() => void sign()}>{`Get a signed link to port ${p.port}`}</button>
      )}
      {error && <span class="error">{` ${error}`}</span>}
    </>
  );
}

/** Exposed ports (GET …/ports, the proxy's); the section stays hidden while kilnd has no such route. */
export function Ports({ id, live }: { id: string; live: boolean }) {
  const [ports, setPorts] = useState<Port[] | null>(null);
  const [absent, setAbsent] = useState(false);
  const [error, setError] = useState<string | null>(null);
  usePoll(
    async () => {
      if (!live || absent) return;
      try {
        setPorts((await api<{ ports: Port[] }>('GET', `/v1/sandboxes/${id}/ports`)).ports);
        setError(null);
      } catch (err) {
        if (err instanceof ApiError && err.code === 'ROUTE_NOT_FOUND') setAbsent(true);
        else setError(describe(err));
      }
    },
    5000,
    [id, live, absent],
  );
  if (absent) return null;
  return (
    <section aria-labelledby="ports-h">
      <h2 id="ports-h">Exposed ports</h2>
      {error && <p class="error">{error}</p>}
      {ports && ports.length === 0 && <p>No ports exposed.</p>}
      <ul>
        {ports?.map((p) => (
          <li key={p.port}>
            <PortLink id={id} p={p} />
          </li>
        ))}
      </ul>
    </section>
  );
}
