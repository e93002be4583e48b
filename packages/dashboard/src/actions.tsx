/** Destroy, pause/resume and snapshot buttons for one sandbox, with the API's answer shown. */
import { useState } from 'preact/hooks';
import { api, describe, type Sandbox } from './api.js';

export function Actions({ sandbox, onDone, compact }: { sandbox: Sandbox; onDone: () => void; compact?: boolean }) {
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState<{ error: boolean; text: string } | null>(null);
  const short = sandbox.id.slice(0, 11);
  const run = async (what: string, fn: () => Promise<string>) => {
    setBusy(true);
    setMsg(null);
    try {
      setMsg({ error: false, text: await fn() });
      onDone();
    } catch (err) {
      setMsg({ error: true, text: `${what}: ${describe(err)}` });
    } finally {
      setBusy(false);
    }
  };
  const destroy = () => {
    if (!confirm(`Destroy ${sandbox.id}? Its VM, disk and network go.`)) return;
    void run('destroy', async () => {
      await api('DELETE', `/v1/sandboxes/${sandbox.id}`);
      return 'destroyed';
    });
  };
  const snapshot = () => {
    const name = prompt('Template name for the snapshot', `snap-${short.slice(3)}-${Date.now().toString(36)}`);
    if (!name) return;
    void run('snapshot', async () => {
      await api('POST', `/v1/sandboxes/${sandbox.id}/snapshot`, { name });
      return `snapshot ${name} taken`;
    });
  };
  const alive = sandbox.state === 'running' || sandbox.state === 'paused';
  return (
    <div class={compact ? 'actions compact' : 'actions'} role="group" aria-label={`Actions for ${sandbox.id}`}>
      {sandbox.state === 'running' && (
        <button type="button" disabled={busy} aria-label={`Pause ${sandbox.id}`} onClick={() => void run('pause', async () => (await api('POST', `/v1/sandboxes/${sandbox.id}/pause`), 'paused'))}>
          Pause
        </button>
      )}
      {sandbox.state === 'paused' && (
        <button type="button" disabled={busy} aria-label={`Resume ${sandbox.id}`} onClick={() => void run('resume', async () => (await api('POST', `/v1/sandboxes/${sandbox.id}/resume`), 'resumed'))}>
          Resume
        </button>
      )}
      {alive && (
        <button type="button" disabled={busy} aria-label={`Snapshot ${sandbox.id}`} onClick={snapshot}>
          Snapshot
        </button>
      )}
      <button type="button" class="danger" disabled={busy} aria-label={`Destroy ${sandbox.id}`} onClick={destroy}>
        Destroy
      </button>
      {msg && (
        <span role={msg.error ? 'alert' : 'status'} class={msg.error ? 'error' : 'ok'}>
          {msg.text}
        </span>
      )}
    </div>
  );
}
