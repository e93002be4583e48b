/**
 * kiln's implementation of E2B's in-sandbox API (envd), for one sandbox's port 49983:
 *   GET  /health                         204 (502 when the sandbox cannot serve)
 *   GET  /files, POST /files             files-rest.ts
 *   POST /process.Process/<Method>       process-service.ts
 *   POST /filesystem.Filesystem/<Method> filesystem-service.ts, watch-service.ts
 * in the Connect protocol's JSON codec (connect-codec.ts). The caller (the sandbox proxy, or
 * the E2B front on the API listener) has resolved the sandbox and checked its access token.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { SandboxManager } from '../../sandbox/manager.js';
import { NO_AUDIT, type AuditSink } from '../../audit/guest-records.js';
import { ConnectError, ConnectStream, decodeRequest, readBody, requestKind, sendUnary, sendUnaryError } from './connect-codec.js';
import type { EnvdCall, ServiceMethods } from './call.js';
import { downloadFile, sendRestError, uploadFiles } from './files-rest.js';
import { fileRecord } from '../../audit/guest-records.js';
import { filesystemMethods } from './filesystem-service.js';
import { guestError } from './proc-errors.js';
import { processMethods } from './process-service.js';
import { userFromAuthorization } from './user.js';

export type EnvdHandler = (req: IncomingMessage, res: ServerResponse, ctx: { sandboxId: string }) => void;

const SERVICES: Record<string, ServiceMethods> = {
  'process.Process': processMethods,
  'filesystem.Filesystem': filesystemMethods,
};

function notRunning(res: ServerResponse, sandboxId: string, message: string): void {
  const body = JSON.stringify({ sandboxId: sandboxId.replace(/^sb-/, ''), message, code: 502 });
  res.writeHead(502, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
}

export function createEnvdHandler(manager: SandboxManager, log?: Logger, audit: AuditSink = NO_AUDIT): EnvdHandler {
  const agentOf = async (sandboxId: string) => {
    await manager.wake(sandboxId);
    manager.touch(sandboxId);
    return manager.agentFor(sandboxId, 'exec');
  };

  async function rpc(req: IncomingMessage, res: ServerResponse, sandboxId: string, service: ServiceMethods, method: string): Promise<void> {
    const kind = requestKind(req.headers['content-type']);
    if (!kind) {
      res.writeHead(415, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'invalid_argument', message: `unsupported content type ${JSON.stringify(req.headers['content-type'] ?? '')}` }));
      return;
    }
    if (kind === 'stream') {
      const out = new ConnectStream(res);
      try {
        const fn = service.stream[method];
        if (!fn) throw new ConnectError('unimplemented', `${req.url} is not a server-streaming method kiln implements`);
        const msg = decodeRequest(await readBody(req), true);
        const call = await makeCall(req, sandboxId);
        await fn(call, msg, out);
        out.end();
      } catch (err) {
        out.end(guestError(err));
      }
      return;
    }
    try {
      const fn = service.unary[method];
      if (!fn) throw new ConnectError('unimplemented', `${req.url} is not a unary method kiln implements`);
      const msg = decodeRequest(await readBody(req), false);
      const call = await makeCall(req, sandboxId);
      sendUnary(res, await fn(call, msg));
    } catch (err) {
      sendUnaryError(res, guestError(err));
    }
  }

  async function makeCall(req: IncomingMessage, sandboxId: string): Promise<EnvdCall> {
    const user = userFromAuthorization(req.headers.authorization);
    const agent = await agentOf(sandboxId);
    return { sandboxId, agent, user, env: { ...(manager.get(sandboxId).spec.env ?? {}) }, headers: req.headers, audit };
  }

  async function serve(req: IncomingMessage, res: ServerResponse, sandboxId: string): Promise<void> {
    // The sandbox does not auto-pause while a call lasts (a command's stream, a watch, a transfer).
    let awake: () => void = () => undefined;
    let done = false;
    res.once('close', () => {
      done = true;
      awake();
    });
    await manager.wake(sandboxId).then(
      () => {
        awake = manager.hold(sandboxId);
        if (done) awake();
      },
      () => undefined, // answered below, as the call's own error
    );
    const url = new URL(req.url ?? '/', 'http://envd');
    const method = req.method ?? 'GET';
    if (url.pathname === '/health' && method === 'GET') {
      try {
        await agentOf(sandboxId);
      } catch (err) {
        return notRunning(res, sandboxId, (err as Error).message);
      }
      res.writeHead(204).end();
      return;
    }
    if (url.pathname === '/files' && (method === 'GET' || method === 'POST')) {
      try {
        const agent = await agentOf(sandboxId);
        if (method === 'GET') await downloadFile(agent, url, res);
        else await uploadFiles(agent, req, url, res, (path, r) => audit.append(fileRecord(sandboxId, 'upload', path, r)));
      } catch (err) {
        sendRestError(res, err);
      }
      return;
    }
    const m = /^\/([A-Za-z0-9_.]+)\/([A-Za-z0-9_]+)$/.exec(url.pathname);
    const service = m ? SERVICES[m[1] as string] : undefined;
    if (!m || !service || method !== 'POST') {
      const body = JSON.stringify({ code: 'unimplemented', message: `kiln's envd does not serve ${method} ${url.pathname}` });
      res.writeHead(m && service ? 405 : 404, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      return;
    }
    await rpc(req, res, sandboxId, service, m[2] as string);
  }

  return (req, res, { sandboxId }) => {
    serve(req, res, sandboxId).catch((err: unknown) => {
      log?.warn({ err, sandboxId, url: req.url }, 'envd request failed');
      if (!res.headersSent) sendUnaryError(res, guestError(err));
      else res.destroy();
    });
  };
}
