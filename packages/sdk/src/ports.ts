/** A sandbox's ports on kilnd's sandbox proxy (docs/ports.md). */
import type { PortUrl, PortView } from '@kiln/contract';
import type { Transport } from './transport.js';
import { call, enc } from './wire.js';

export type { PortUrl, PortView };

export class Ports {
  constructor(
    private readonly t: Transport,
    private readonly id: string,
  ) {}

  private get path(): string {
    return `/v1/sandboxes/${enc(this.id)}/ports`;
  }

  /** Exposes `port` (private unless `public: true`); exposing it again updates it. */
  expose(port: number, opts: { public?: boolean } = {}): Promise<PortView> {
    return call<PortView>(this.t, 'POST', this.path, { port, ...(opts.public !== undefined ? { public: opts.public } : {}) });
  }

  async list(): Promise<PortView[]> {
    return (await call<{ ports: PortView[] }>(this.t, 'GET', this.path)).ports;
  }

  async unexpose(port: number): Promise<void> {
    await call(this.t, 'DELETE', `${this.path}/${port}`);
  }

  /** The URL to open `port`: plain for a public port, signed (valid `ttlSeconds`, default 24 h) for a private one. */
  url(port: number, opts: { ttlSeconds?: number; allPorts?: boolean } = {}): Promise<PortUrl> {
    const q = new URLSearchParams();
    if (opts.ttlSeconds !== undefined) q.set('ttl', String(opts.ttlSeconds));
    if (opts.allPorts) q.set('allPorts', 'true');
    const qs = q.toString();
    return call<PortUrl>(this.t, 'GET', `${this.path}/${port}/url${qs ? `?${qs}` : ''}`);
  }
}
