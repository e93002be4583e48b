/**
 * A private unix socket (0600, in the state directory) whose requests are treated exactly like
 * the TCP listener's: each needs an API key and is its tenant's. kilnd's own MCP endpoint
 * (/mcp) drives the API through it with the caller's key, so every tool call passes the same
 * authentication, route policy, ownership checks, limits and audit as a direct call, with
 * streaming and no TLS on the loopback path.
 */
import { chmod, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { markTcp } from './principal.js';

export interface TenantSocket {
  path: string;
  close(): Promise<void>;
}

/** The client address audit records for requests that came through the tenant socket. */
export const TENANT_SOCKET_ADDRESS = 'kilnd-mcp';

export async function listenTenantSocket(app: FastifyInstance, path: string): Promise<TenantSocket> {
  const route = app.routing.bind(app) as (req: IncomingMessage, res: unknown) => void;
  const server: Server = createServer((req, res) => {
    markTcp(req, TENANT_SOCKET_ADDRESS);
    route(req, res);
  });
  server.on('upgrade', (req: IncomingMessage, sock: Duplex, head: Buffer) => {
    markTcp(req, TENANT_SOCKET_ADDRESS);
    app.server.emit('upgrade', req, sock, head);
  });
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 0;
  await rm(path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(path, 0o600);
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => void rm(path, { force: true }).then(() => resolve(), () => resolve()));
        server.closeAllConnections();
      }),
  };
}
