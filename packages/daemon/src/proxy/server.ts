/**
 * The sandbox proxy (docs/ports.md): its own HTTP(S) listener that routes each request
 * (routing.ts) to a port inside a sandbox, after the access check (access.ts). The path in is
 * the agent's tcp.connect (tunnel.ts): a connection from 127.0.0.1 inside the guest, that
 * needs no guest network (sandboxes with networking off are reachable too) and that the
 * guest's egress policy has no part in. Bodies stream both ways with backpressure; WebSocket
 * upgrades are spliced byte for byte. Every proxied connection is counted per sandbox and port
 * (metrics, and the sandbox's `proxy` events with bytes each way); every denial is audited,
 * and an allowed access once per client connection and route.
 */
import { request as httpRequest, type IncomingMessage, type ServerResponse, type OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { AgentClient } from '@kiln/protocol';
import { KilnError } from '../errors.js';
import type { AuditLog } from '../audit/log.js';
import type { SandboxManager } from '../sandbox/manager.js';
import type { TenantStore } from '../tenancy/tenant-store.js';
import { AccessDenied, checkAccess, type AccessGranted } from './access.js';
import type { ProxyMetrics } from './metrics.js';
import type { PortStore } from './port-store.js';
import type { ProxyFlows } from './flow-records.js';
import { parseRoute, type ProxyRoute } from './routing.js';
import { withoutOwnCookie } from './signing.js';
import { GuestSocket } from './tunnel.js';

export type PortHandler = (req: IncomingMessage, res: ServerResponse, ctx: { sandboxId: string }) => void;

export interface ProxyOptions {
  manager: SandboxManager;
  ports: PortStore;
  secret: Buffer;
  tenants: TenantStore | null;
  audit: AuditLog | null;
  metrics: ProxyMetrics | null;
  /** Proxied connections in the sandbox's flow records. */
  flows?: ProxyFlows | null;
  logger: Logger;
  domain: string;
  /** Open connections into one sandbox at most (default 256). */
  maxConnectionsPerSandbox?: number;
  /** How often open connections count as activity (auto-pause, idle timeout). Default 10 s. */
  touchIntervalMs?: number;
}

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'kiln-access-token', 'x-access-token', 'kiln-sandbox-id', 'kiln-sandbox-port', 'e2b-sandbox-id', 'e2b-sandbox-port']);

function errorBody(err: KilnError): string {
  return JSON.stringify({ error: err.toJSON() });
}

export class SandboxProxy {
  private readonly handlers = new Map<number, PortHandler>();
  private readonly open = new Map<string, number>();
  private readonly audited = new WeakMap<object, Set<string>>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly o: ProxyOptions) {
    this.timer = setInterval(() => {
      for (const id of this.open.keys()) o.manager.touch(id);
    }, o.touchIntervalMs ?? 10_000);
    this.timer.unref();
  }

  /** Serves `port` of every sandbox with a kilnd handler instead of the guest (E2B's envd: 49983). */
  registerPortHandler(port: number, handler: PortHandler): void {
    this.handlers.set(port, handler);
  }

  close(): void {
    clearInterval(this.timer);
  }

  readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    this.serve(req, res).catch((err: unknown) => this.fail(res, err));
  };

  readonly onUpgrade = (req: IncomingMessage, sock: Duplex, head: Buffer): void => {
    this.upgrade(req, sock, head).catch((err: unknown) => {
      const e = toKilnError(err);
      if (!sock.destroyed && sock.writable) sock.end(`HTTP/1.1 ${e.status} ${e.code}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${errorBody(e)}`);
      else sock.destroy();
    });
  };

  /** Route, sandbox, access, then the guest's connection opener. */
  private async admit(req: IncomingMessage): Promise<{ route: ProxyRoute; access: AccessGranted; connect: (port: number, onActivity: () => void) => GuestSocket }> {
    const route = parseRoute(req, this.o.domain);
    if (!route) throw new KilnError('PROXY_NO_ROUTE', `no sandbox route in this request: use http://<port>-<sandbox id>.${this.o.domain}/, the Kiln-Sandbox-Id and Kiln-Sandbox-Port headers, or /sandboxes/<id>/ports/<port>/`);
    const rec = this.o.manager.get(route.sandboxId); // SANDBOX_NOT_FOUND
    if (rec.state === 'destroyed' || rec.pool !== null) throw new KilnError('SANDBOX_NOT_FOUND', `sandbox ${route.sandboxId} not found`);
    const cookiePath = route.via === 'path' ? `/sandboxes/${route.sandboxId}/ports/${route.port}/` : '/';
    let access: AccessGranted;
    try {
      access = checkAccess({ ports: this.o.ports, secret: this.o.secret, tenants: this.o.tenants, handlerPorts: new Set(this.handlers.keys()) }, req, route, cookiePath);
    } catch (err) {
      if (err instanceof AccessDenied) {
        this.o.metrics?.denied(err.reason);
        this.audit(req, route, { decision: 'deny', reason: err.reason, code: err.code }, err.keyId);
      }
      throw err;
    }
    const key = `${route.sandboxId}:${route.port}:${access.via}`;
    const seen = this.audited.get(req.socket) ?? new Set<string>();
    if (!seen.has(key) || req.headers.upgrade) {
      seen.add(key);
      this.audited.set(req.socket, seen);
      this.audit(req, route, { decision: 'allow', via: access.via }, access.keyId, access.tenant);
    }
    const connect = (port: number, onActivity: () => void) => {
      const agent = this.o.manager.liveAgent(route.sandboxId) as Pick<AgentClient, 'tcpConnect'> | null;
      const cur = this.o.manager.get(route.sandboxId);
      if (cur.state !== 'running') throw new KilnError('INVALID_STATE', `sandbox ${route.sandboxId} is ${cur.state}`, { status: 409 });
      if (!agent) throw new KilnError('AGENT_UNAVAILABLE', `sandbox ${route.sandboxId} has no connected agent`);
      const n = this.open.get(route.sandboxId) ?? 0;
      if (n >= (this.o.maxConnectionsPerSandbox ?? 256)) throw new KilnError('PROXY_CONNECTION_LIMIT', `sandbox ${route.sandboxId} has ${n} proxied connections open`);
      this.open.set(route.sandboxId, n + 1);
      this.o.metrics?.opened(route.sandboxId, 1);
      // No auto-pause while a connection is open (the release counts as activity).
      const release = this.o.manager.hold(route.sandboxId);
      const gs = new GuestSocket((p, h) => agent.tcpConnect(p, h), port, onActivity);
      gs.once('close', () => {
        release();
        const left = (this.open.get(route.sandboxId) ?? 1) - 1;
        if (left > 0) this.open.set(route.sandboxId, left);
        else this.open.delete(route.sandboxId);
        this.o.metrics?.opened(route.sandboxId, -1);
        this.o.metrics?.transferred(route.sandboxId, port, gs.bytesIn, gs.bytesOut);
        try {
          this.o.flows?.record(route.sandboxId, port, gs.bytesIn, gs.bytesOut, true);
        } catch (err) {
          this.o.logger.warn({ err, sandboxId: route.sandboxId }, 'recording a proxied flow failed');
        }
      });
      return gs;
    };
    await this.o.manager.wake(route.sandboxId);
    this.o.manager.touch(route.sandboxId);
    return { route, access, connect };
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { route, access, connect } = await this.admit(req);
    const { sandboxId, port } = route;
    const handler = this.handlers.get(port);
    if (handler) {
      req.url = access.path;
      res.once('finish', () => this.o.metrics?.request(sandboxId, port, res.statusCode));
      handler(req, res, { sandboxId });
      return;
    }
    const touch = throttle(() => this.o.manager.touch(sandboxId), 1000);
    const gs = connect(port, touch);
    const up = httpRequest({ createConnection: () => gs as never, method: req.method, path: access.path, headers: forwardHeaders(req, false) });
    const settle = (status: number) => this.o.metrics?.request(sandboxId, port, status);
    up.on('response', (ur) => {
      const headers: OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(ur.headers)) if (!HOP.has(k) && v !== undefined) headers[k] = v;
      if (access.setCookie) headers['set-cookie'] = [...((headers['set-cookie'] as string[] | undefined) ?? []), access.setCookie];
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, headers);
      res.flushHeaders();
      settle(ur.statusCode ?? 502);
      ur.on('data', (b: Buffer) => {
        if (!res.write(b)) ur.pause();
      });
      res.on('drain', () => ur.resume());
      ur.on('end', () => res.end());
      ur.on('error', () => res.destroy());
    });
    up.on('error', (err: Error & { code?: string }) => {
      if (res.headersSent) return void res.destroy();
      const e =
        gs.failure === 'CONNECTION_REFUSED'
          ? new KilnError('PROXY_UPSTREAM_REFUSED', `nothing listens on port ${port} in sandbox ${sandboxId}`)
          : new KilnError('PROXY_UPSTREAM_FAILED', `the connection to port ${port} in sandbox ${sandboxId} failed: ${err.message}`);
      settle(e.status);
      this.fail(res, e);
    });
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
    });
    req.on('data', (b: Buffer) => {
      if (!up.write(b)) req.pause();
    });
    up.on('drain', () => req.resume());
    req.on('end', () => up.end());
    req.on('error', () => up.destroy());
  }

  private async upgrade(req: IncomingMessage, sock: Duplex, head: Buffer): Promise<void> {
    const { route, access, connect } = await this.admit(req);
    if (this.handlers.has(route.port)) throw new KilnError('PROXY_UPSTREAM_FAILED', `port ${route.port} is served by kilnd and takes no upgrades`);
    const gs = connect(route.port, throttle(() => this.o.manager.touch(route.sandboxId), 1000));
    const lines = [`${req.method} ${access.path} HTTP/1.1`];
    for (const [k, v] of Object.entries(forwardHeaders(req, true))) for (const x of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${String(x)}`);
    gs.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length) gs.write(head);
    let answered = false;
    gs.once('data', () => {
      answered = true;
      this.o.metrics?.request(route.sandboxId, route.port, 101);
    });
    gs.on('error', () => {
      if (!answered && !sock.destroyed) {
        const e = gs.failure === 'CONNECTION_REFUSED' ? new KilnError('PROXY_UPSTREAM_REFUSED', `nothing listens on port ${route.port} in sandbox ${route.sandboxId}`) : new KilnError('PROXY_UPSTREAM_FAILED', 'the connection into the sandbox failed');
        this.o.metrics?.request(route.sandboxId, route.port, e.status);
        sock.end(`HTTP/1.1 ${e.status} ${e.code}\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${errorBody(e)}`);
      } else sock.destroy();
    });
    sock.on('error', () => gs.destroy());
    sock.on('close', () => gs.destroy());
    gs.on('close', () => sock.destroy());
    gs.pipe(sock);
    sock.pipe(gs);
  }

  private fail(res: ServerResponse, err: unknown): void {
    const e = toKilnError(err);
    if (e.status >= 500 && !e.code.startsWith('PROXY_')) this.o.logger.warn({ err }, 'proxy request failed');
    if (res.headersSent) return void res.destroy();
    res.writeHead(e.status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
    res.end(errorBody(e));
  }

  private audit(req: IncomingMessage, route: ProxyRoute, data: Record<string, unknown>, keyId: string | null = null, tenant: string | null = null): void {
    this.o.audit
      ?.append({
        type: 'proxy',
        sandboxId: route.sandboxId,
        actor: { kind: 'key', keyId, tenant, address: (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '') || null },
        data: { ...data, port: route.port, route: route.via, method: req.method ?? '', path: route.path.split('?')[0], upgrade: !!req.headers.upgrade },
      })
      .catch((err: unknown) => this.o.logger.error({ err, sandboxId: route.sandboxId }, 'audit of a proxy access failed'));
  }
}

function forwardHeaders(req: IncomingMessage, upgrade: boolean): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    if (HOP.has(k) && !(upgrade && (k === 'connection' || k === 'upgrade'))) continue;
    if (k === 'cookie') {
      const c = withoutOwnCookie(Array.isArray(v) ? v.join('; ') : v);
      if (c) out.cookie = c;
      continue;
    }
    if (k === 'authorization' && /^Bearer\s+kiln_/i.test(String(v))) continue;
    out[k] = v;
  }
  const addr = (req.socket.remoteAddress ?? '').replace(/^::ffff:/, '');
  out['x-forwarded-for'] = req.headers['x-forwarded-for'] ? `${String(req.headers['x-forwarded-for'])}, ${addr}` : addr;
  out['x-forwarded-proto'] = 'encrypted' in req.socket && req.socket.encrypted ? 'https' : 'http';
  if (req.headers.host) out['x-forwarded-host'] = req.headers.host;
  return out;
}

function toKilnError(err: unknown): KilnError {
  if (err instanceof KilnError) return err;
  return new KilnError('INTERNAL', err instanceof Error ? err.message : String(err));
}

function throttle(fn: () => void, ms: number): () => void {
  let last = 0;
  return () => {
    const now = Date.now();
    if (now - last >= ms) {
      last = now;
      fn();
    }
  };
}
