/**
 * sandbox.pty: an interactive terminal in the guest. A PTY process is started (its pid is a
 * background process like any other), then a WebSocket carries terminal bytes both ways;
 * resizes and the exit status travel as JSON text frames.
 */
import type { Transport } from './transport.js';
import { call, enc, query } from './wire.js';
import { openWs, type WsConn } from './ws.js';
import type { ExitStatus, ProcessInfo } from './process.js';

export interface PtyOptions {
  cols?: number;
  rows?: number;
  /** Terminal output as it arrives. */
  onData: (data: Uint8Array) => void;
  user?: string;
  cwd?: string;
  /** Command line to run (default the user's login shell). */
  cmd?: string;
  env?: Record<string, string>;
  term?: string;
  timeoutMs?: number;
}

export class PtyHandle {
  private readonly exited: Promise<ExitStatus>;
  private settle!: (s: ExitStatus) => void;
  private conn!: WsConn;

  constructor(
    private readonly t: Transport,
    private readonly base: string,
    readonly pid: number,
  ) {
    this.exited = new Promise((r) => (this.settle = r));
  }

  /** @internal */
  async open(onData: (d: Uint8Array) => void): Promise<this> {
    this.conn = await openWs(this.t, `${this.base}/${this.pid}/pty`, {
      onMessage: (m) => {
        if (typeof m !== 'string') return onData(m);
        const j = JSON.parse(m) as { type?: string; exitCode?: number | null; signal?: string | null };
        if (j.type === 'exit') this.settle({ exitCode: j.exitCode ?? null, signal: j.signal ?? null });
      },
      onClose: () => {
        // A close without an exit frame: ask kilnd how the process ended.
        void call<ProcessInfo>(this.t, 'GET', `${this.base}/${this.pid}/wait`).then(
          (i) => this.settle({ exitCode: i.exitCode, signal: i.signal }),
          () => this.settle({ exitCode: null, signal: null }),
        );
      },
    });
    return this;
  }

  /** Sends keystrokes (a string is UTF-8 encoded). */
  write(data: string | Uint8Array): void {
    this.conn.send(typeof data === 'string' ? new TextEncoder().encode(data) : data);
  }
  resize(size: { cols: number; rows: number }): void {
    this.conn.send(JSON.stringify({ type: 'resize', ...size }));
  }
  async kill(signal = 'SIGKILL'): Promise<void> {
    if (signal === 'SIGKILL') await call(this.t, 'DELETE', `${this.base}/${this.pid}`);
    else await call(this.t, 'POST', `${this.base}/${this.pid}/signal`, { signal });
  }
  /** Resolves with the exit status once the terminal's process ends. */
  wait(): Promise<ExitStatus> {
    return this.exited;
  }
  /** Closes this client's stream; the process keeps running (reconnect with sandbox.pty.connect). */
  disconnect(): void {
    this.conn.close();
  }
  /** Kills the process and closes the stream. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.kill().catch(() => undefined);
    this.conn.close();
  }
}

export class Pty {
  private readonly base: string;
  constructor(
    private readonly t: Transport,
    id: string,
  ) {
    this.base = `/v1/sandboxes/${enc(id)}/processes`;
  }

  async create(o: PtyOptions): Promise<PtyHandle> {
    const body: Record<string, unknown> = { pty: { cols: o.cols ?? 80, rows: o.rows ?? 24 }, stdin: true };
    if (o.cmd) body.shell = o.cmd;
    for (const k of ['env', 'cwd', 'user', 'timeoutMs'] as const) if (o[k] !== undefined) body[k] = o[k];
    if (o.term) body.term = o.term;
    const info = await call<ProcessInfo>(this.t, 'POST', this.base, body);
    return new PtyHandle(this.t, this.base, info.pid).open(o.onData);
  }

  /** Attaches to an existing PTY process. */
  connect(pid: number, o: { onData: (d: Uint8Array) => void }): Promise<PtyHandle> {
    return new PtyHandle(this.t, this.base, pid).open(o.onData);
  }

  /** The shortcut route's URL path (a WebSocket that creates a PTY and attaches in one go). */
  static shortcutPath(id: string, o: { cols?: number; rows?: number; term?: string; user?: string; cwd?: string; cmd?: string }): string {
    return `/v1/sandboxes/${enc(id)}/pty${query(o)}`;
  }
}
