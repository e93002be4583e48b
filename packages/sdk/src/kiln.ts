/** The entry point: `const kiln = Kiln.connect({ url | socket, apiKey })`. */
import type { CreateSandboxBody } from '@kiln/contract';
import { Sandbox, type SandboxInfo } from './sandbox.js';
import { makeTransport, type Transport, type TransportOptions } from './transport.js';
import { call, enc, query } from './wire.js';
import { Volumes } from './volumes.js';

export type CreateSandboxOptions = CreateSandboxBody & { signal?: AbortSignal };

export interface ConnectOptions {
  /** kilnd over TCP, e.g. https://kiln.example:7443 (default $KILN_HOST). */
  url?: string;
  /** kilnd's unix socket (default $KILN_SOCKET, else /run/kiln/kiln.sock when no url is set). */
  socket?: string;
  /** API key for TCP (default $KILN_API_KEY). */
  apiKey?: string;
  /** PEM of a CA to trust (a kilnd with a self-signed certificate). */
  ca?: string | Uint8Array;
}

const env = (k: string): string | undefined => (typeof process !== 'undefined' ? process.env?.[k] : undefined) || undefined;

export class Sandboxes {
  constructor(private readonly t: Transport) {}

  /** Creates a sandbox and resolves once it runs (a failure rejects with the step's error). */
  async create(opts: CreateSandboxOptions = {}): Promise<Sandbox> {
    const { signal, ...body } = opts;
    const info = await call<SandboxInfo>(this.t, 'POST', `/v1/sandboxes${query({ wait: true })}`, body, signal);
    return new Sandbox(this.t, info);
  }
  async list(): Promise<SandboxInfo[]> {
    return (await call<{ sandboxes: SandboxInfo[] }>(this.t, 'GET', '/v1/sandboxes')).sandboxes;
  }
  get(id: string): Promise<SandboxInfo> {
    return call(this.t, 'GET', `/v1/sandboxes/${enc(id)}`);
  }
  /** A handle on an existing sandbox (checks that it exists). */
  async connect(id: string): Promise<Sandbox> {
    return new Sandbox(this.t, await this.get(id));
  }
  /** Starts a create and returns at once (state `creating`); poll with get(). */
  async createAsync(opts: CreateSandboxBody = {}): Promise<SandboxInfo> {
    return call<SandboxInfo>(this.t, 'POST', `/v1/sandboxes${query({ wait: false })}`, opts);
  }
}

export class Kiln {
  readonly sandboxes: Sandboxes;
  /** Persistent volumes (docs/volumes.md). */
  readonly volumes: Volumes;
  private constructor(readonly transport: Transport) {
    this.sandboxes = new Sandboxes(transport);
    this.volumes = new Volumes(transport, this.sandboxes);
  }

  static connect(o: ConnectOptions = {}): Kiln {
    const url = o.url ?? (o.socket ? undefined : env('KILN_HOST'));
    const socket = o.socket ?? (url ? undefined : (env('KILN_SOCKET') ?? '/run/kiln/kiln.sock'));
    const apiKey = o.apiKey ?? env('KILN_API_KEY');
    const t: TransportOptions = { ...(url ? { url } : {}), ...(socket ? { socket } : {}), ...(apiKey ? { apiKey } : {}), ...(o.ca ? { ca: o.ca } : {}) };
    return new Kiln(makeTransport(t));
  }

  /** A JSON call to any route (for what the typed surface does not cover yet). */
  request<T>(method: string, path: string, json?: unknown): Promise<T> {
    return call<T>(this.transport, method, path, json);
  }

  health(): Promise<{ ok: boolean }> {
    return call(this.transport, 'GET', '/v1/health');
  }
  info(): Promise<Record<string, unknown>> {
    return call(this.transport, 'GET', '/v1/info');
  }
}
