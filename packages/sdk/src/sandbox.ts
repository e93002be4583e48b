/** A sandbox handle: exec, processes, terminals, files, lifecycle, events and logs. */
import type { SandboxView } from '@kiln/contract';
import { runExec, type ExecOptions, type ExecResult } from './exec.js';
import { Files } from './files.js';
import { Processes } from './process.js';
import { Pty } from './pty.js';
import { Ports } from './ports.js';
import type { Transport } from './transport.js';
import { call, enc, lines, ndjson, query, send } from './wire.js';

export type SandboxInfo = SandboxView;

export interface SandboxEvent {
  seq: number;
  at: number;
  sandboxId?: string;
  type: string;
  data: Record<string, unknown>;
}

export class Sandbox {
  readonly files: Files;
  readonly process: Processes;
  readonly pty: Pty;
  /** Ports exposed on kilnd's sandbox proxy (docs/ports.md). */
  readonly ports: Ports;

  constructor(
    private readonly t: Transport,
    /** The sandbox as kilnd last described it (refresh with `await sandbox.refresh()`). */
    public info: SandboxInfo,
  ) {
    this.files = new Files(t, info.id);
    this.process = new Processes(t, info.id);
    this.pty = new Pty(t, info.id);
    this.ports = new Ports(t, info.id);
  }

  /** The sandbox's proxy access token (header Kiln-Access-Token), as kilnd gave it on create or inspect. */
  get accessToken(): string | undefined {
    return this.info.accessToken;
  }

  /** The URL to open `port` (exposed first if it is not): plain when public, else signed. */
  async url(port: number, opts: { ttlSeconds?: number } = {}): Promise<string> {
    if (!(await this.ports.list()).some((p) => p.port === port)) await this.ports.expose(port);
    const u = await this.ports.url(port, opts);
    if (u.url === null) throw new Error('kilnd runs no sandbox proxy (start it with --proxy-listen)');
    return u.url;
  }

  get id(): string {
    return this.info.id;
  }
  private get path(): string {
    return `/v1/sandboxes/${enc(this.id)}`;
  }

  /** Runs a command (a string goes to /bin/sh -c; an array is argv) and resolves when it exits. */
  exec(cmd: string | string[], opts?: ExecOptions): Promise<ExecResult> {
    return runExec(this.t, this.id, cmd, opts);
  }

  async refresh(): Promise<SandboxInfo> {
    this.info = await call<SandboxInfo>(this.t, 'GET', this.path);
    return this.info;
  }
  async pause(): Promise<void> {
    this.info = (await call<SandboxInfo | undefined>(this.t, 'POST', `${this.path}/pause`)) ?? this.info;
  }
  async resume(): Promise<void> {
    this.info = (await call<SandboxInfo | undefined>(this.t, 'POST', `${this.path}/resume`)) ?? this.info;
  }
  /** Snapshots the sandbox as a template new sandboxes can start from (`create({template: name})`). */
  snapshot(name: string): Promise<{ name: string; key: string }> {
    return call(this.t, 'POST', `${this.path}/snapshot`, { name });
  }
  /** The sandbox now expires `ms` from now (0 = never). */
  async setTimeout(ms: number): Promise<void> {
    this.info = await call<SandboxInfo>(this.t, 'PUT', `${this.path}/timeout`, { timeoutMs: ms });
  }
  /** Destroys the sandbox and everything it owns. */
  async kill(): Promise<void> {
    await call(this.t, 'DELETE', this.path);
  }

  /**
   * Lifecycle events, oldest first. With `follow` the iterator keeps waiting for new ones until
   * `signal` aborts or the loop breaks.
   */
  async *events(o: { after?: number; follow?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<SandboxEvent> {
    const res = await send(this.t, { method: 'GET', path: `/v1/events${query({ sandbox: this.id, after: o.after, follow: o.follow ? true : undefined })}`, ...(o.signal ? { signal: o.signal } : {}) });
    try {
      if (!o.follow) {
        let text = '';
        for await (const line of lines(res.body)) text += line;
        yield* (JSON.parse(text) as { events: SandboxEvent[] }).events;
        return;
      }
      yield* ndjson<SandboxEvent>(res.body);
    } catch (err) {
      if (!o.signal?.aborted) throw err;
    } finally {
      res.cancel();
    }
  }

  /** Guest log lines (console, dockerd, agent); `follow` keeps streaming. */
  async *logs(o: { service?: 'console' | 'dockerd' | 'agent'; tail?: number; follow?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<string> {
    const res = await send(this.t, { method: 'GET', path: `${this.path}/logs${query({ service: o.service, tail: o.tail, follow: o.follow ? true : undefined })}`, ...(o.signal ? { signal: o.signal } : {}) });
    try {
      yield* lines(res.body);
    } catch (err) {
      if (!o.signal?.aborted) throw err;
    } finally {
      res.cancel();
    }
  }

  /** `await using sandbox = await kiln.sandboxes.create()` destroys it at the end of the block. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.kill();
    } catch (err) {
      if ((err as { code?: string }).code !== 'SANDBOX_NOT_FOUND') throw err;
    }
  }
}
