/** sandbox.exec: a foreground command whose output streams to callbacks as it arrives. */
import { KilnError } from './errors.js';
import type { Transport } from './transport.js';
import { abortError, asBody, enc, fromBase64, ndjson, send, call, type Data } from './wire.js';

export interface ExecOptions {
  /** Called with each chunk of stdout as it arrives (UTF-8 decoded). */
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
  /** Fed to the command's stdin, which then closes. Without it stdin is closed at once. */
  stdin?: Data;
  env?: Record<string, string>;
  cwd?: string;
  /** Guest user: `root` (kiln's default) or `user` (uid 1000). */
  user?: string;
  /** Kill the command after this long (result.timedOut is then true). */
  timeoutMs?: number;
  /** Aborting kills the command (SIGKILL) and rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface ExecResult {
  exitCode: number | null;
  /** The signal that ended it (e.g. SIGKILL), or null. */
  signal: string | null;
  timedOut: boolean;
  durationMs: number;
  /** All of stdout and stderr (decoded); the callbacks saw the same, as it came. */
  stdout: string;
  stderr: string;
}

type ExecEvent =
  | { type: 'started'; execId: string }
  | { type: 'stdout' | 'stderr'; data: string }
  | { type: 'exit'; exitCode: number | null; signal: string | null; timedOut: boolean; durationMs: number }
  | { type: 'error'; error: { code: string; message: string } };

export async function runExec(t: Transport, id: string, cmd: string | string[], o: ExecOptions = {}): Promise<ExecResult> {
  o.signal?.throwIfAborted();
  const body: Record<string, unknown> = typeof cmd === 'string' ? { shell: cmd } : { argv: cmd };
  if (o.env) body.env = o.env;
  if (o.cwd) body.cwd = o.cwd;
  if (o.user) body.user = o.user;
  if (o.timeoutMs !== undefined) body.timeoutMs = o.timeoutMs;
  if (o.stdin !== undefined) body.stdin = true;
  const res = await send(t, { method: 'POST', path: `/v1/sandboxes/${enc(id)}/exec`, json: body });
  const out = { stdout: new TextDecoder(), stderr: new TextDecoder() };
  let stdout = '';
  let stderr = '';
  let execId: string | null = null;
  let stdinDone: Promise<unknown> | null = null;
  const onAbort = () => {
    if (execId) void call(t, 'POST', `/v1/sandboxes/${enc(id)}/execs/${enc(execId)}/signal`, { signal: 'SIGKILL' }).catch(() => undefined);
    res.cancel();
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const ev of ndjson<ExecEvent>(res.body)) {
      if (ev.type === 'started') {
        execId = ev.execId;
        if (o.stdin !== undefined) {
          stdinDone = send(t, { method: 'POST', path: `/v1/sandboxes/${enc(id)}/execs/${enc(ev.execId)}/stdin`, body: asBody(o.stdin) }).then(
            (r) => r.cancel(),
            () => undefined, // the command may exit before reading it all
          );
        }
      } else if (ev.type === 'stdout' || ev.type === 'stderr') {
        const s = out[ev.type].decode(fromBase64(ev.data), { stream: true });
        if (ev.type === 'stdout') {
          stdout += s;
          o.onStdout?.(s);
        } else {
          stderr += s;
          o.onStderr?.(s);
        }
      } else if (ev.type === 'exit') {
        await stdinDone;
        return { exitCode: ev.exitCode, signal: ev.signal, timedOut: ev.timedOut, durationMs: ev.durationMs, stdout, stderr };
      } else if (ev.type === 'error') {
        throw new KilnError(ev.error.code, ev.error.message, { status: 500 });
      }
    }
  } catch (err) {
    if (o.signal?.aborted) throw abortError(o.signal);
    throw err;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
  if (o.signal?.aborted) throw abortError(o.signal);
  throw new KilnError('PROTOCOL_ERROR', 'the exec stream ended without an exit status', { status: 0 });
}
