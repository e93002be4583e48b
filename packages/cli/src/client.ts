/**
 * The CLI's client of kilnd's REST API, over the SDK's transport (a unix socket, or a URL with an
 * API key): wire error codes come back as the SDK's KilnError classes with the same code.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
// The SDK's transport and errors alone (its subpath exports): `kiln ls` loads no more of it.
import { fromWire, KilnError } from '@kiln/sdk/errors';
import { makeTransport, type Transport } from '@kiln/sdk/transport';

/** The SDK's error class (kept under the CLI's old name). */
export { KilnError as KilnApiError };

/** Where kilnd is: its unix socket, or a URL (http/https) with an API key. */
export interface Target {
  socket?: string;
  url?: string;
  apiKey?: string;
}

export interface SandboxView {
  id: string;
  state: string;
  spec: { memoryMiB: number; vcpus: number; diskGiB: number; timeoutMs: number; env: Record<string, string>; labels: Record<string, string> };
  imageHash: string | null;
  step: string | null;
  error: { code: string; message: string; step?: string } | null;
  vm: { pid: number; accel: string } | null;
  createdAt: string;
  readyAt: string | null;
  expiresAt: string | null;
  /** The owning tenant; null or absent: the admin's. */
  tenant?: string | null;
  /** Auto-pause after this long idle (0 = never); who paused it; running and paused time. */
  autoPauseMs?: number;
  pausedBy?: 'user' | 'auto' | null;
  runningSeconds?: number;
  pausedSeconds?: number;
}

export type ExecEvent =
  | { type: 'started'; execId: string }
  | { type: 'stdout' | 'stderr'; data: string }
  | { type: 'exit'; exitCode: number | null; signal: string | null; timedOut: boolean; durationMs: number }
  | { type: 'error'; error: { code: string; message: string } };

interface RawOptions {
  method: string;
  path: string;
  json?: unknown;
  body?: Readable;
}

export class KilnClient {
  readonly transport: Transport;
  readonly target: string;

  constructor(target: string | Target) {
    const t: Target = typeof target === 'string' ? { socket: target } : target;
    this.transport = makeTransport({ ...t, node: true });
    this.target = t.socket ?? t.url ?? '';
  }

  /** A request whose response is the Node stream itself (status, headers, body). */
  async raw(o: RawOptions): Promise<IncomingMessage> {
    try {
      const res = await this.transport.request({ method: o.method, path: o.path, ...(o.json !== undefined ? { json: o.json } : {}), ...(o.body ? { body: o.body as AsyncIterable<Uint8Array> } : {}) });
      return res.body as IncomingMessage;
    } catch (err) {
      if (err instanceof KilnError && err.code === 'DAEMON_UNREACHABLE') {
        throw new KilnError(err.code, `${err.message}; is kilnd running? (--socket / KILN_SOCKET, or --host / KILN_HOST)`, { cause: err });
      }
      throw err;
    }
  }

  async call<T>(method: string, path: string, json?: unknown): Promise<T> {
    const res = await this.raw({ method, path, json });
    const text = await readAll(res);
    if ((res.statusCode ?? 500) >= 400) throw toApiError(res.statusCode ?? 500, text);
    return (text.length ? JSON.parse(text) : undefined) as T;
  }

  async check(res: IncomingMessage): Promise<IncomingMessage> {
    if ((res.statusCode ?? 500) >= 400) throw toApiError(res.statusCode ?? 500, await readAll(res));
    return res;
  }

  create(body: Record<string, unknown>, wait = true): Promise<SandboxView> {
    return this.call('POST', `/v1/sandboxes?wait=${wait}`, body);
  }
  get(id: string): Promise<SandboxView> {
    return this.call('GET', `/v1/sandboxes/${encodeURIComponent(id)}`);
  }
  async list(): Promise<SandboxView[]> {
    return (await this.call<{ sandboxes: SandboxView[] }>('GET', '/v1/sandboxes')).sandboxes;
  }
  async destroy(id: string): Promise<void> {
    await this.call('DELETE', `/v1/sandboxes/${encodeURIComponent(id)}`);
  }
  async events(id: string, after = 0): Promise<Array<{ seq: number; at: number; type: string; data: Record<string, unknown> }>> {
    type Ev = { seq: number; at: number; type: string; data: Record<string, unknown> };
    const all: Ev[] = [];
    for (let cursor: number | null = after; cursor !== null; ) {
      const page: { events: Ev[]; nextAfter?: number | null } = await this.call('GET', `/v1/sandboxes/${encodeURIComponent(id)}/events?after=${cursor}`);
      all.push(...page.events);
      cursor = page.nextAfter ?? null;
    }
    return all;
  }

  /** Starts an exec; yields its NDJSON events as they arrive. */
  async *exec(id: string, body: Record<string, unknown>): AsyncGenerator<ExecEvent> {
    const res = await this.check(await this.raw({ method: 'POST', path: `/v1/sandboxes/${encodeURIComponent(id)}/exec`, json: body }));
    for await (const line of lines(res)) if (line.trim()) yield JSON.parse(line) as ExecEvent;
  }

  async sendStdin(id: string, execId: string, body: Readable): Promise<void> {
    const res = await this.raw({ method: 'POST', path: `/v1/sandboxes/${encodeURIComponent(id)}/execs/${encodeURIComponent(execId)}/stdin`, body });
    await this.check(res);
    await readAll(res);
  }

  async signal(id: string, execId: string, signal: string): Promise<void> {
    await this.call('POST', `/v1/sandboxes/${encodeURIComponent(id)}/execs/${encodeURIComponent(execId)}/signal`, { signal });
  }

  async upload(id: string, path: string, body: Readable, opts: { mode?: number; parents?: boolean } = {}): Promise<{ bytes: number; sha256: string }> {
    const q = `path=${encodeURIComponent(path)}${opts.mode === undefined ? '' : `&mode=${opts.mode.toString(8).padStart(4, '0')}`}${opts.parents ? '&parents=true' : ''}`;
    const res = await this.raw({ method: 'PUT', path: `/v1/sandboxes/${encodeURIComponent(id)}/files?${q}`, body });
    return JSON.parse(await readAll(await this.check(res))) as { bytes: number; sha256: string };
  }

  /** Pushes an image archive to the private registry (docs/registry.md). */
  async pushImage<T>(name: string, tag: string, body: Readable): Promise<T> {
    const res = await this.raw({ method: 'POST', path: `/v1/images/push?name=${encodeURIComponent(name)}&tag=${encodeURIComponent(tag)}`, body });
    return JSON.parse(await readAll(await this.check(res))) as T;
  }

  async download(id: string, path: string): Promise<IncomingMessage> {
    return this.check(await this.raw({ method: 'GET', path: `/v1/sandboxes/${encodeURIComponent(id)}/files?path=${encodeURIComponent(path)}` }));
  }

  stat(id: string, path: string): Promise<{ type: string; size: number; mode: number; mtimeMs: number }> {
    return this.call('GET', `/v1/sandboxes/${encodeURIComponent(id)}/files/stat?path=${encodeURIComponent(path)}`);
  }

  async logs(id: string): Promise<IncomingMessage> {
    return this.check(await this.raw({ method: 'GET', path: `/v1/sandboxes/${encodeURIComponent(id)}/logs` }));
  }
}

/**
 * The lines of a streamed response (NDJSON, logs) as they arrive, without their newline.
 * An unterminated last line is yielded only with `partialTail`.
 */
export async function* lines(res: IncomingMessage, opts: { partialTail?: boolean } = {}): AsyncGenerator<string> {
  res.setEncoding('utf8');
  let buf = '';
  for await (const chunk of res) {
    buf += chunk as string;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      yield buf.slice(0, nl);
      buf = buf.slice(nl + 1);
    }
  }
  if (opts.partialTail && buf) yield buf;
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const toApiError = fromWire;
