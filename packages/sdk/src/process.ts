/**
 * sandbox.process: background processes that outlive the client that started them. A process is
 * named by its guest pid; its output is kept in a bounded buffer with absolute offsets, so a
 * second client can connect later and receive what it missed (`offset: 0` = from the start).
 */
import type { ProcessInfo as ContractProcessInfo } from '@kiln/contract';
import type { Transport } from './transport.js';
import { asBody, call, enc, fromBase64, ndjson, query, readText, send, type Data } from './wire.js';

/** A background process as kilnd describes it (the contract's ProcessInfo). */
export type ProcessInfo = ContractProcessInfo;

export interface OutputHandlers {
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
  /** Raw terminal bytes of a PTY process. */
  onPty?: (data: Uint8Array) => void;
  /** Called when the requested offset was older than the buffer keeps. */
  onDropped?: (bytes: number) => void;
}

export interface StartOptions extends OutputHandlers {
  cmd?: string;
  argv?: string[];
  env?: Record<string, string>;
  cwd?: string;
  user?: string;
  timeoutMs?: number;
  tag?: string;
  /** Keep stdin open for sendStdin (default false: closed). */
  stdin?: boolean;
}

export interface ConnectOptions extends OutputHandlers {
  /** Output offset to start from (default 0: everything still buffered). */
  offset?: number;
  signal?: AbortSignal;
}

export interface ExitStatus {
  exitCode: number | null;
  signal: string | null;
}

/** A connection to one process's output; the process itself keeps running when it is dropped. */
export class ProcessHandle {
  /** The next output offset (what a later connect({offset}) would resume from). */
  offset = 0;
  private readonly ctl = new AbortController();
  readonly done: Promise<ExitStatus | null>;

  constructor(
    private readonly proc: Processes,
    readonly pid: number,
    follow: boolean,
    o: ConnectOptions,
  ) {
    this.offset = o.offset ?? 0;
    o.signal?.addEventListener('abort', () => this.ctl.abort(), { once: true });
    this.done = follow ? this.pump(o) : Promise.resolve(null);
    this.done.catch(() => undefined);
  }

  private async pump(o: ConnectOptions): Promise<ExitStatus | null> {
    const dec = { stdout: new TextDecoder(), stderr: new TextDecoder() };
    try {
      const res = await send(this.proc.t, { method: 'GET', path: `${this.proc.base}/${this.pid}/output${query({ offset: this.offset, follow: true })}`, signal: this.ctl.signal });
      for await (const ev of ndjson<{ type: string; data?: string; offset?: number; bytes?: number; exitCode?: number | null; signal?: string | null }>(res.body)) {
        if (ev.type === 'dropped') o.onDropped?.(ev.bytes ?? 0);
        else if (ev.type === 'exit') return { exitCode: ev.exitCode ?? null, signal: ev.signal ?? null };
        else if (ev.data !== undefined) {
          const bytes = fromBase64(ev.data);
          this.offset = (ev.offset ?? this.offset) + bytes.length;
          if (ev.type === 'pty') o.onPty?.(bytes);
          else if (ev.type === 'stdout') o.onStdout?.(dec.stdout.decode(bytes, { stream: true }));
          else if (ev.type === 'stderr') o.onStderr?.(dec.stderr.decode(bytes, { stream: true }));
        }
      }
      return null;
    } catch (err) {
      if (this.ctl.signal.aborted) return null;
      throw err;
    }
  }

  /** Waits for the process to exit (from kilnd, not from this stream). */
  wait(): Promise<ProcessInfo> {
    return this.proc.wait(this.pid);
  }
  kill(signal = 'SIGKILL'): Promise<void> {
    return this.proc.kill(this.pid, signal);
  }
  sendStdin(data: Data): Promise<void> {
    return this.proc.sendStdin(this.pid, data);
  }
  closeStdin(): Promise<void> {
    return this.proc.closeStdin(this.pid);
  }
  /** Stops receiving output; the process keeps running. */
  disconnect(): void {
    this.ctl.abort();
  }
  async [Symbol.asyncDispose](): Promise<void> {
    this.disconnect();
  }
}

export class Processes {
  readonly base: string;
  constructor(
    readonly t: Transport,
    id: string,
  ) {
    this.base = `/v1/sandboxes/${enc(id)}/processes`;
  }

  /** Starts a detached process; with output handlers its output streams to them from offset 0. */
  async start(o: StartOptions): Promise<ProcessHandle & { info: ProcessInfo }> {
    const body: Record<string, unknown> = o.argv ? { argv: o.argv } : { shell: o.cmd };
    for (const k of ['env', 'cwd', 'user', 'timeoutMs', 'tag', 'stdin'] as const) if (o[k] !== undefined) body[k] = o[k];
    const info = await call<ProcessInfo>(this.t, 'POST', this.base, body);
    const follow = Boolean(o.onStdout || o.onStderr || o.onPty);
    return Object.assign(new ProcessHandle(this, info.pid, follow, { ...o, offset: 0 }), { info });
  }

  async list(): Promise<ProcessInfo[]> {
    return (await call<{ processes: ProcessInfo[] }>(this.t, 'GET', this.base)).processes;
  }
  get(pid: number): Promise<ProcessInfo> {
    return call(this.t, 'GET', `${this.base}/${pid}`);
  }
  /** Attaches to a running (or exited) process's output, from `offset` (default 0). */
  connect(pid: number, o: ConnectOptions = {}): ProcessHandle {
    return new ProcessHandle(this, pid, true, o);
  }
  /** The output buffered so far, without following. */
  async output(pid: number, offset = 0): Promise<{ stdout: string; stderr: string; dropped: number }> {
    const res = await send(this.t, { method: 'GET', path: `${this.base}/${pid}/output${query({ offset, follow: false })}` });
    const r = { stdout: '', stderr: '', dropped: 0 };
    for await (const ev of ndjson<{ type: string; data?: string; bytes?: number }>(res.body)) {
      if (ev.type === 'dropped') r.dropped += ev.bytes ?? 0;
      else if ((ev.type === 'stdout' || ev.type === 'pty') && ev.data) r.stdout += new TextDecoder().decode(fromBase64(ev.data));
      else if (ev.type === 'stderr' && ev.data) r.stderr += new TextDecoder().decode(fromBase64(ev.data));
    }
    return r;
  }
  async kill(pid: number, signal = 'SIGKILL'): Promise<void> {
    if (signal === 'SIGKILL') await call(this.t, 'DELETE', `${this.base}/${pid}`);
    else await call(this.t, 'POST', `${this.base}/${pid}/signal`, { signal });
  }
  async sendStdin(pid: number, data: Data): Promise<void> {
    await readText(await send(this.t, { method: 'POST', path: `${this.base}/${pid}/stdin`, body: asBody(data) }));
  }
  async closeStdin(pid: number): Promise<void> {
    await call(this.t, 'POST', `${this.base}/${pid}/stdin/close`);
  }
  wait(pid: number): Promise<ProcessInfo> {
    return call(this.t, 'GET', `${this.base}/${pid}/wait`);
  }
  async resize(pid: number, size: { cols: number; rows: number }): Promise<void> {
    await call(this.t, 'POST', `${this.base}/${pid}/resize`, size);
  }
}
