/**
 * The TCP listener: a second HTTP (or, given a certificate and key, HTTPS) server that hands
 * its requests — and WebSocket upgrades — to the same fastify app as the unix socket. Each
 * request is marked as arrived over TCP (principal.ts), which makes the auth hook demand an
 * API key. The client address recorded in audit is the socket's peer, or, only when that peer
 * is a configured trusted proxy, the last X-Forwarded-For hop that is not itself trusted.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { KilnError } from '../errors.js';
import { markTcp } from './principal.js';
import { listenLongLived } from '../util/listen.js';

export interface ListenConfig {
  /** HOST:PORT (an IPv6 host in brackets); port 0 picks a free one. */
  listen: string;
  tlsCert?: string | null;
  tlsKey?: string | null;
  /** Peers whose X-Forwarded-For is believed (exact addresses). Default none. */
  trustedProxies?: string[];
  /**
   * Handlers that may take a request before kiln's API does (the E2B surface, e2b/dispatch.ts):
   * each returns true when it took the request. Default none.
   */
  fronts?: Array<(req: IncomingMessage, res: ServerResponse) => boolean>;
}

export function parseListen(s: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(s.trim());
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port > 65535) throw new KilnError('INVALID_ARGUMENT', `--listen wants HOST:PORT (got ${JSON.stringify(s)})`, { status: 400, details: { field: 'listen' } });
  return { host: (m[1] ?? m[2]) as string, port };
}

const bare = (a: string | undefined): string | null => (a ? a.replace(/^::ffff:/, '') : null);

export function clientAddress(raw: IncomingMessage, trusted: ReadonlySet<string>): string | null {
  const peer = bare(raw.socket.remoteAddress);
  if (!peer || !trusted.has(peer)) return peer;
  const hops = String(raw.headers['x-forwarded-for'] ?? '').split(',').map((h) => h.trim()).filter(Boolean);
  for (let i = hops.length - 1; i >= 0; i--) {
    const h = bare(hops[i]);
    if (h && !trusted.has(h)) return h;
  }
  return peer;
}

export interface TcpListener {
  server: Server;
  address: { host: string; port: number; tls: boolean };
  close(): Promise<void>;
}

/** Starts serving the app on TCP. The app must be ready (listening on its unix socket). */
export async function listenTcp(app: FastifyInstance, cfg: ListenConfig): Promise<TcpListener> {
  const { host, port } = parseListen(cfg.listen);
  if (!!cfg.tlsCert !== !!cfg.tlsKey) throw new KilnError('INVALID_ARGUMENT', 'TLS needs both --tls-cert and --tls-key', { status: 400, details: { field: cfg.tlsCert ? 'tlsKey' : 'tlsCert' } });
  const trusted = new Set(cfg.trustedProxies ?? []);
  const tls = !!(cfg.tlsCert && cfg.tlsKey);
  const route = app.routing.bind(app) as (req: IncomingMessage, res: unknown) => void;
  const fronts = cfg.fronts ?? [];
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    markTcp(req, clientAddress(req, trusted));
    if (fronts.some((f) => f(req, res))) return;
    route(req, res);
  };
  const server: Server = tls ? createHttpsServer({ cert: readFileSync(cfg.tlsCert as string), key: readFileSync(cfg.tlsKey as string) }, onRequest) : createHttpServer(onRequest);
  // Upgraded sockets (terminals, and upgrades refused with an HTTP error) leave the server's
  // connection tracking: closing the listener ends them itself.
  const upgraded = new Set<Duplex>();
  server.on('upgrade', (req: IncomingMessage, sock: Duplex, head: Buffer) => {
    upgraded.add(sock);
    sock.once('close', () => upgraded.delete(sock));
    markTcp(req, clientAddress(req, trusted));
    app.server.emit('upgrade', req, sock, head);
  });
  // As fastify's own server: no bound on a whole request (long uploads and exec stdin stream).
  await listenLongLived(server, port, host);
  const a = server.address() as AddressInfo;
  return {
    server,
    address: { host: a.address, port: a.port, tls },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const sock of upgraded) sock.destroy();
      }),
  };
}
