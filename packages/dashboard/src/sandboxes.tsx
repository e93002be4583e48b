/** The sandbox table: live (events stream + stats poll), with create and per-row actions. */
import { useRef, useState } from 'preact/hooks';
import { api, describe, type Sample, type Sandbox } from './api.js';
import { age, bytes, expiry, labels, percent } from './format.js';
import { useEvents, usePoll } from './live.js';
import { Actions } from './actions.js';

const SHAPES: Record<string, { memoryMiB: number; vcpus: number }> = {
  small: { memoryMiB: 512, vcpus: 1 },
  medium: { memoryMiB: 1024, vcpus: 2 },
  large: { memoryMiB: 2048, vcpus: 4 },
};

function CreateForm({ onCreated }: { onCreated: () => void }) {
  const [shape, setShape] = useState('medium');
  const [template, setTemplate] = useState('');
  const [preset, setPreset] = useState('default');
  const [timeoutMin, setTimeoutMin] = useState('60');
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState<{ error: boolean; text: string } | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setMsg(null);
    try {
      const body = { ...SHAPES[shape], timeoutMs: Math.round(Number(timeoutMin) * 60_000), network: { preset }, ...(template.trim() ? { template: template.trim() } : {}) };
      const sb = await api<Sandbox>('POST', '/v1/sandboxes?wait=false', body);
      setMsg({ error: false, text: `creating ${sb.id}` });
      onCreated();
    } catch (err) {
      setMsg({ error: true, text: describe(err) });
    } finally {
      setBusy(false);
    }
  };
  const field = (id: string, label: string, input: preact.ComponentChildren) => (
    <div class="field">
      <label for={id}>{label}</label>
      {input}
    </div>
  );
  return (
    <form class="create" onSubmit={submit} aria-label="Create a sandbox">
      {field(
        'shape',
        'Shape',
        <select id="shape" value={shape} onChange={(e) => setShape((e.target as HTMLSelectElement).value)}>
          {Object.entries(SHAPES).map(([k, s]) => (
            <option value={k}>{`${k} (${s.vcpus} vCPU, ${s.memoryMiB} MiB)`}</option>
          ))}
        </select>,
      )}
      {field('template', 'Template', <input id="template" value={template} placeholder="default" onInput={(e) => setTemplate((e.target as HTMLInputElement).value)} />)}
      {field(
        'preset',
        'Network policy',
        <select id="preset" value={preset} onChange={(e) => setPreset((e.target as HTMLSelectElement).value)}>
          <option value="default">default (DNS, HTTP/S out)</option>
          <option value="locked">locked (DNS + allow list)</option>
          <option value="none">none (no network)</option>
        </select>,
      )}
      {field('timeout', 'Timeout (minutes, 0 = none)', <input id="timeout" type="number" min="0" value={timeoutMin} onInput={(e) => setTimeoutMin((e.target as HTMLInputElement).value)} />)}
      <button type="submit" disabled={busy}>
        Create
      </button>
      {msg && (
        <p role={msg.error ? 'alert' : 'status'} class={msg.error ? 'error' : 'ok'}>
          {msg.text}
        </p>
      )}
    </form>
  );
}

export function SandboxTable() {
  const [list, setList] = useState<Sandbox[] | null>(null);
  const [stats, setStats] = useState<Map<string, Sample>>(new Map());
  const [error, setError] = useState<string | null>(null);
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);
  const load = async () => {
    try {
      const r = await api<{ sandboxes: Sandbox[] }>('GET', '/v1/sandboxes');
      setList(r.sandboxes.filter((s) => s.state !== 'destroyed').sort((a, b) => b.createdAt.localeCompare(a.createdAt)));
      setError(null);
    } catch (err) {
      setError(describe(err));
    }
  };
  const soon = () => {
    if (pending.current) return;
    pending.current = setTimeout(() => {
      pending.current = null;
      void load();
    }, 150);
  };
  useEvents(soon);
  usePoll(async () => {
    await load();
    const r = await api<{ sandboxes: Sample[] }>('GET', '/v1/stats');
    setStats(new Map(r.sandboxes.map((s) => [s.id, s])));
  }, 3000);
  const now = Date.now();
  return (
    <section aria-labelledby="sandboxes-h">
      <h1 id="sandboxes-h">Sandboxes</h1>
      <CreateForm onCreated={soon} />
      {error && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      {list === null ? (
        <p>Loading…</p>
      ) : list.length === 0 ? (
        <p>No sandboxes.</p>
      ) : (
        <table class="sandboxes">
          <caption class="sr-only">Sandboxes, newest first</caption>
          <thead>
            <tr>
              {['Sandbox', 'State', 'Template', 'Age', 'Expires', 'CPU', 'Memory', 'Network rx/tx', 'Labels', 'Actions'].map((h) => (
                <th scope="col">{h}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {list.map((s) => {
              const st = stats.get(s.id);
              return (
                <tr data-sandbox={s.id} key={s.id}>
                  <th scope="row">
                    <a href={`#/sandbox/${s.id}`}>{s.id}</a>
                  </th>
                  <td>
                    <span class={`state state-${s.state}`}>{s.state}</span>
                    {s.error && <span class="error"> {s.error.code}</span>}
                  </td>
                  <td>{s.spec.template ?? 'default'}</td>
                  <td>{age(s.createdAt, now)}</td>
                  <td>{expiry(s.expiresAt, now)}</td>
                  <td>{percent(st?.vmm?.cpuPercent)}</td>
                  <td>{st?.guest ? `${bytes(st.guest.memUsedBytes)} / ${bytes(st.guest.memTotalBytes)}` : `${s.spec.memoryMiB} MiB`}</td>
                  <td>{st?.net ? `${bytes(st.net.rxBytes)} / ${bytes(st.net.txBytes)}` : '–'}</td>
                  <td>{labels(s.spec.labels) || '–'}</td>
                  <td>
                    <Actions sandbox={s} onDone={soon} compact />
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
