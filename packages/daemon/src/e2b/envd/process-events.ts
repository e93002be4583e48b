/**
 * A background process's output as envd's ProcessEvent stream: start → data* → end. Output is
 * pulled from the guest's ring buffer with `proc.read` (long-polling); the next read is asked
 * for only once the client's socket took the previous events. A long poll that comes back
 * empty sends a keepalive, so proxies and the SDK see the stream is alive.
 */
import type { ProcReadResult } from '@kiln/protocol';
import type { GuestAgent } from '../../sandbox/guest-agent.js';
import type { ConnectStream } from './connect-codec.js';
import { procError } from './proc-errors.js';

const POLL_MS = 20_000;
const POLL_TIMEOUT_MS = POLL_MS + 15_000;

/** envd's EndEvent: exitCode (omitted when 0), exited, status and, on failure, error. */
export function endEvent(exit: { exitCode: number | null; signal: string | null }): Record<string, unknown> {
  if (exit.exitCode !== null) {
    const status = `exit status ${exit.exitCode}`;
    return { ...(exit.exitCode !== 0 ? { exitCode: exit.exitCode, error: status } : {}), exited: true, status };
  }
  const sig = (exit.signal ?? 'SIGKILL').replace(/^SIG/, '').toLowerCase();
  const status = `signal: ${sig === 'kill' ? 'killed' : sig === 'term' ? 'terminated' : sig}`;
  return { exitCode: -1, exited: false, status, error: status };
}

/** Streams events of process `pid` from output offset `offset` until it exits or the client leaves. */
export async function pumpProcess(agent: GuestAgent, pid: number, offset: number, out: ConnectStream): Promise<void> {
  let at = offset;
  for (;;) {
    if (!out.open) return;
    let r: ProcReadResult;
    try {
      r = await agent.proc('proc.read', { pid, offset: at, waitMs: POLL_MS }, POLL_TIMEOUT_MS);
    } catch (err) {
      throw procError(err, pid);
    }
    for (const c of r.chunks) await out.send({ event: { data: { [c.type]: c.data } } });
    at = r.nextOffset;
    if (r.exit) {
      await out.send({ event: { end: endEvent(r.exit) } });
      return;
    }
    if (r.chunks.length === 0) await out.send({ event: { keepalive: {} } });
  }
}
