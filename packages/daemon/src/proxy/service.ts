/**
 * The sandbox proxy as kilnd runs it: the port table and access tokens, the signing secret,
 * the proxy server and its listener, and what the ports API needs (URLs, signed URLs).
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { AuditLog } from '../audit/log.js';
import type { SandboxManager } from '../sandbox/manager.js';
import { parseListen } from '../tenancy/listener.js';
import type { TenantStore } from '../tenancy/tenant-store.js';
import { ProxyFlows } from './flow-records.js';
import { ProxyMetrics } from './metrics.js';
import { PortStore, type ExposedPort } from './port-store.js';
import { portUrl } from './routing.js';
import { SandboxProxy, type PortHandler } from './server.js';
import { loadProxySecret, SIG_PARAM, signGrant } from './signing.js';
import { listenLongLived } from '../util/listen.js';

export interface ProxyConfig {
  listen: string | null;
  domain: string;
  tlsCert: string | null;
  tlsKey: string | null;
  publicUrl: string | null;
}

export interface PortView extends ExposedPort {
  /** The port's URL (host-name form); null when kilnd runs no proxy listener. */
  url: string | null;
}

/** Signed URLs are valid for 24 h unless asked otherwise; at most 30 days. */
export const DEFAULT_SIGNED_TTL_S = 24 * 3600;
export const MAX_SIGNED_TTL_S = 30 * 24 * 3600;

export class ProxyService {
  readonly ports: PortStore;
  readonly proxy: SandboxProxy;
  private readonly secret: Buffer;
  private server: Server | null = null;
  private base: { scheme: 'http' | 'https'; domain: string; port: number | null } | null = null;

  constructor(
    private readonly cfg: ProxyConfig,
    deps: { db: Database.Database; stateDir: string; manager: SandboxManager; tenants: TenantStore | null; audit: AuditLog | null; registry: Registry | null; logger: Logger; allPorts?: (sandboxId: string) => 'public' | 'private' | null },
  ) {
    this.ports = new PortStore(deps.db);
    this.secret = loadProxySecret(deps.stateDir);
    this.proxy = new SandboxProxy({
      manager: deps.manager,
      ports: this.ports,
      secret: this.secret,
      tenants: deps.tenants,
      audit: deps.audit,
      metrics: deps.registry ? new ProxyMetrics(deps.registry) : null,
      flows: new ProxyFlows(deps.db),
      logger: deps.logger.child({ component: 'proxy' }),
      domain: cfg.domain,
      ...(deps.allPorts ? { allPorts: deps.allPorts } : {}),
    });
  }

  registerPortHandler(port: number, handler: PortHandler): void {
    this.proxy.registerPortHandler(port, handler);
  }

  async listen(): Promise<{ host: string; port: number; tls: boolean } | null> {
    if (!this.cfg.listen) return null;
    const { host, port } = parseListen(this.cfg.listen);
    const tls = !!(this.cfg.tlsCert && this.cfg.tlsKey);
    const server = tls
      ? createHttpsServer({ cert: readFileSync(this.cfg.tlsCert as string), key: readFileSync(this.cfg.tlsKey as string) }, this.proxy.onRequest)
      : createHttpServer(this.proxy.onRequest);
    server.on('upgrade', this.proxy.onUpgrade);
    await listenLongLived(server, port, host);
    this.server = server;
    const a = server.address() as AddressInfo;
    if (this.cfg.publicUrl) {
      const u = new URL(this.cfg.publicUrl);
      this.base = { scheme: u.protocol === 'https:' ? 'https' : 'http', domain: u.hostname, port: u.port ? Number(u.port) : null };
    } else this.base = { scheme: tls ? 'https' : 'http', domain: this.cfg.domain, port: a.port };
    return { host, port: a.port, tls };
  }

  /** The host suffix of port URLs (`<domain>[:<port>]`), as E2B's `domain` field wants it; null without a listener. */
  hostSuffix(): string | null {
    if (!this.base) return null;
    return this.base.port === null ? this.base.domain : `${this.base.domain}:${this.base.port}`;
  }

  /** What /v1/info says about the proxy. */
  info(): { url: string; listen: string } | null {
    if (!this.base || !this.server) return null;
    const a = this.server.address() as AddressInfo;
    return { url: portUrl(this.base, '{sandboxId}', 0).replace('0-', '{port}-'), listen: `${a.address}:${a.port}` };
  }

  url(sandboxId: string, port: number): string | null {
    return this.base ? portUrl(this.base, sandboxId, port) : null;
  }

  view(sandboxId: string, p: ExposedPort): PortView {
    return { ...p, url: this.url(sandboxId, p.port) };
  }

  /** A signed URL for one port (or, with allPorts, every port) valid for ttlS seconds. */
  signedUrl(sandboxId: string, port: number, ttlS = DEFAULT_SIGNED_TTL_S, allPorts = false): { url: string | null; token: string; expiresAt: string } {
    const exp = Math.floor(Date.now() / 1000) + Math.min(Math.max(1, ttlS), MAX_SIGNED_TTL_S);
    const token = signGrant(this.secret, { sandboxId, port: allPorts ? null : port, exp });
    const base = this.url(sandboxId, port);
    return { url: base ? `${base}?${SIG_PARAM}=${token}` : null, token, expiresAt: new Date(exp * 1000).toISOString() };
  }

  /** A destroyed sandbox's ports and token go. */
  forget(sandboxId: string): void {
    this.ports.forget(sandboxId);
  }

  async close(): Promise<void> {
    this.proxy.close();
    const s = this.server;
    this.server = null;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
