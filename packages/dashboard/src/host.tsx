/** The host: capacity, warm pool, templates, the audit log (with chain verification), doctor. */
import { useState } from 'preact/hooks';
import { api, describe } from './api.js';
import { bytes, time } from './format.js';
import { usePoll } from './live.js';

interface Info {
  version: string;
  driver: { accel?: unknown };
  image: { hash: string } | null;
  pool?: { size: number; ready: number; filling: number };
  capacity?: { sandboxes: number; maxSandboxes: number; memoryMiB: number; memoryLimitMiB: number; hostMemoryMiB: number };
}
interface Template {
  name: string;
  source: string;
  tenant: string | null;
  memoryMiB: number;
  vcpus: number;
  diskGiB: number;
  stateBytes?: number;
}
interface AuditRecord {
  seq: number;
  at: string | number;
  type: string;
  sandboxId?: string;
  actor?: Record<string, unknown>;
  data?: Record<string, unknown>;
}
interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
  fix?: string;
}

/** Loads one GET into state, keeping the error message to show in place of the data. */
function useGet<T>(path: string, ms: number): { data: T | null; error: string | null } {
  const [state, setState] = useState<{ data: T | null; error: string | null }>({ data: null, error: null });
  usePoll(async () => {
    try {
      setState({ data: await api<T>('GET', path), error: null });
    } catch (err) {
      setState({ data: null, error: describe(err) });
    }
  }, ms);
  return state;
}

const Err = ({ text }: { text: string | null }) => (text ? <p class="error">{text}</p> : null);

function Meter({ label, used, max, unit }: { label: string; used: number; max: number; unit: string }) {
  return (
    <div class="meter">
      <label>
        {`${label}: ${used} of ${max}${unit ? ` ${unit}` : ''} used, ${Math.max(0, max - used)} free`}
        <progress max={max} value={used} />
      </label>
    </div>
  );
}

function Verify() {
  const [result, setResult] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async () => {
    setBusy(true);
    try {
      const r = await api<{ ok: boolean; records: number; files: number; broken: { seq?: number; reason?: string } | null }>('GET', '/v1/audit/verify');
      setResult({ ok: r.ok, text: r.ok ? `The chain is intact: ${r.records} records in ${r.files} files.` : `The chain is BROKEN at record ${r.broken?.seq ?? '?'}: ${r.broken?.reason ?? 'see kilnd audit verify'}` });
    } catch (err) {
      setResult({ ok: false, text: describe(err) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <div>
      <button type="button" onClick={() => void run()} disabled={busy}>
        Verify chain
      </button>
      {result && (
        <p role="status" class={result.ok ? 'ok' : 'error'} id="verify-result">
          {result.text}
        </p>
      )}
    </div>
  );
}

export function HostPage() {
  const info = useGet<Info>('/v1/info', 5000);
  const templates = useGet<{ templates: Template[] }>('/v1/templates', 30_000);
  const audit = useGet<{ records: AuditRecord[] }>('/v1/audit?limit=50&since=' + encodeURIComponent(new Date(Date.now() - 3600_000).toISOString()), 10_000);
  const doctor = useGet<{ ok: boolean; checks: Check[] }>('/v1/doctor', 60_000);
  const i = info.data;
  return (
    <section aria-labelledby="host-h">
      <h1 id="host-h">Host</h1>
      <section aria-labelledby="cap-h">
        <h2 id="cap-h">Capacity</h2>
        <Err text={info.error} />
        {i && <p>{`kilnd ${i.version}, accelerator ${String(i.driver.accel ?? '?')}, image ${i.image?.hash.slice(0, 12) ?? 'none'}`}</p>}
        {i?.capacity ? (
          <>
            <Meter label="Sandboxes" used={i.capacity.sandboxes} max={i.capacity.maxSandboxes} unit="" />
            <Meter label="Guest memory" used={i.capacity.memoryMiB} max={i.capacity.memoryLimitMiB} unit="MiB" />
          </>
        ) : (
          i && <p>Capacity is shown to the admin key only.</p>
        )}
        {i?.pool && <p>{`Warm pool: ${i.pool.ready} ready of ${i.pool.size}, ${i.pool.filling} filling.`}</p>}
      </section>
      <section aria-labelledby="tpl-h">
        <h2 id="tpl-h">Templates</h2>
        <Err text={templates.error} />
        <table>
          <thead>
            <tr>
              {['Name', 'Source', 'Owner', 'Shape', 'Size'].map((h) => (
                <th scope="col">{h}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {templates.data?.templates.map((t) => (
              <tr>
                <td>{t.name}</td>
                <td>{t.source}</td>
                <td>{t.tenant ?? 'shared'}</td>
                <td>{`${t.vcpus} vCPU, ${t.memoryMiB} MiB, ${t.diskGiB} GiB`}</td>
                <td>{bytes(t.stateBytes ?? null)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section aria-labelledby="audit-h">
        <h2 id="audit-h">Audit log (last hour, first 50)</h2>
        <Verify />
        <Err text={audit.error} />
        <ol class="events" tabIndex={0} aria-label="Audit records">
          {audit.data?.records.map((r) => (
            <li>
              <time>{time(typeof r.at === 'number' ? r.at : Date.parse(r.at))}</time> <strong>{r.type}</strong> {r.sandboxId && <code>{r.sandboxId}</code>} <code>{JSON.stringify(r.data ?? {})}</code>
            </li>
          ))}
        </ol>
      </section>
      <section aria-labelledby="doc-h">
        <h2 id="doc-h">Doctor</h2>
        <Err text={doctor.error} />
        <ul class="checks">
          {doctor.data?.checks.map((c) => (
            <li class={`check-${c.status}`}>
              <strong>{`${c.status === 'ok' ? '✓' : c.status === 'warn' ? '!' : '✗'} ${c.name}`}</strong> {c.detail}
              {c.fix && <div>{`fix: ${c.fix}`}</div>}
            </li>
          ))}
        </ul>
      </section>
    </section>
  );
}
