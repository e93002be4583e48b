/**
 * The registry as a sandbox sees it: `https://registry.kiln.internal` is the sandbox's gateway
 * address, port 443, where a forwarder in its netns (socat, started by registry/service.ts)
 * hands each connection to a unix socket of kilnd's in the sandbox's run dir. The socket says
 * which sandbox is calling — no credentials in the guest, nothing to spoof — and this proxy
 * terminates TLS, checks the repository against the sandbox's tenant (authz.ts) and forwards
 * to the registry on loopback.
 */
import { request } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { rmSync } from 'node:fs';
import { registryAccess } from './authz.js';
import type { RegistryTls } from './tls.js';

export interface ProxyTarget {
  port: number;
}

function deny(res: ServerResponse, status: number, reason: string): void {
  const body = JSON.stringify({ errors: [{ code: 'DENIED', message: `kiln: ${reason}` }] });
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'docker-distribution-api-version': 'registry/2.0' });
  res.end(body);
}

/** Forwards one allowed request to the registry on loopback (body streamed both ways). */
export function forward(req: IncomingMessage, res: ServerResponse, target: ProxyTarget): void {
  // The registry builds its upload URLs from these: the client reached it over https at its name.
  const headers: Record<string, string | string[] | undefined> = { ...req.headers, 'x-forwarded-proto': 'https', 'x-forwarded-host': req.headers.host ?? 'registry.kiln.internal' };
  delete headers['x-forwarded-for'];
  const up = request({ host: '127.0.0.1', port: target.port, method: req.method, path: req.url, headers }, (ur) => {
    res.writeHead(ur.statusCode ?? 502, ur.headers);
    ur.pipe(res);
  });
  up.on('error', (err) => {
    if (!res.headersSent) deny(res, 502, `the registry is not answering: ${err.message}`);
    else res.destroy();
  });
  req.pipe(up);
}

/** kilnd's listener for one sandbox, on `socketPath`; `tenant()` is asked per request (a warm-pool member gets its owner later). */
export function listenForSandbox(socketPath: string, tls: RegistryTls, target: ProxyTarget, tenant: () => string | null, onRequest?: (method: string, url: string, status: number) => void): Promise<Server> {
  rmSync(socketPath, { force: true });
  const server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const a = registryAccess(tenant(), req.method ?? 'GET', req.url ?? '/');
    if (!a.ok) {
      onRequest?.(req.method ?? '', req.url ?? '', a.status);
      return deny(res, a.status, a.reason);
    }
    forward(req, res, target);
  });
  server.on('tlsClientError', () => undefined);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
