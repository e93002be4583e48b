/**
 * Audit of API calls, as fastify hooks:
 *  - on each new connection, the unix-socket peer's credentials are looked up (peer.ts);
 *  - onRequest: refuses every request while the audit log is failed (fail closed), sets
 *    the x-request-id response header, and runs the rest of the request inside its
 *    RequestContext (request id + caller) so records and log lines made on its behalf carry
 *    them;
 *  - onSend: appends the `api` record (method, route, path, status, error code, duration,
 *    sandbox) and waits until it is durable, so no call returns before its record is on disk.
 *
 * Recorded: every call by default, including GETs that read only kilnd's own metadata
 * (health, info, list/inspect, events, logs, stats, metrics, the audit log itself, openapi);
 * `recordMetadataReads: false` leaves those out (for heavy polling or scraping). GETs that
 * read from a guest (files: download, stat, list) are always recorded. A successful
 * change of a sandbox's policy (PUT/PATCH …/policy) also gets a `policy` record holding the
 * request body and, as the route reports it (auditDetail), the policy before and after the
 * change. Route log lines are bound to the sandbox id.
 */
import { AsyncResource } from 'node:async_hooks';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isSandboxId } from '../sandbox/ids.js';
import { requestContext, type RequestContext } from './context.js';
import type { AuditLog } from './log.js';
import { peerCredentials, type PeerCredentials } from './peer.js';
import type { AuditActor } from './record.js';

export interface ApiAuditOptions {
  audit: AuditLog;
  /** Record GETs of kilnd's own metadata too (every API call then has a record). Default true. */
  recordMetadataReads?: boolean;
  /** The caller of a request not from the unix socket (the TCP listener's key), else null. */
  actorFor?: (req: FastifyRequest) => AuditActor | null;
  /** The sandbox a call is about, for an API whose ids or bodies differ from kiln's (the E2B API). Default: kiln's :id param or create response. */
  sandboxOf?: (req: FastifyRequest, status: number, payload: unknown) => string | undefined;
  /** The error code in a failed call's body. Default: kiln's `error.code`. */
  errorCodeOf?: (payload: unknown) => string | undefined;
}

const CTX = Symbol('kiln.requestContext');
const SCOPE = Symbol('kiln.asyncScope');
const RECORDED = Symbol('kiln.recorded');
const DETAIL = Symbol('kiln.auditDetail');
const EXTRA = Symbol('kiln.auditExtra');
type Req = FastifyRequest & { [CTX]?: RequestContext; [SCOPE]?: AsyncResource; [RECORDED]?: boolean; [DETAIL]?: Record<string, unknown>; [EXTRA]?: Record<string, unknown> };

/** Adds fields to the call's `api` record (e.g. why authentication failed). */
export function auditExtra(req: FastifyRequest, data: Record<string, unknown>): void {
  const r = req as Req;
  r[EXTRA] = { ...r[EXTRA], ...data };
}

/** Lets a route add what it knows (e.g. a policy before and after its change) to the call's `policy` record. */
export function auditDetail(req: FastifyRequest, data: Record<string, unknown>): void {
  const r = req as Req;
  r[DETAIL] = { ...r[DETAIL], ...data };
}

export function isMetadataRead(method: string, route: string | undefined): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  return !(route ?? '').startsWith('/v1/sandboxes/:id/files');
}

/** Does this call get an `api` record? */
export const isAudited = (method: string, route: string | undefined, o: Pick<ApiAuditOptions, 'recordMetadataReads'>): boolean =>
  (o.recordMetadataReads ?? true) || !isMetadataRead(method, route);

export const actorOf = (peer: PeerCredentials | null): AuditActor =>
  peer ? { kind: 'unix', uid: peer.uid, gid: peer.gid, pid: peer.pid } : { kind: 'unix', uid: null, gid: null, pid: null };

function sandboxOf(req: FastifyRequest, reply: FastifyReply, payload: unknown): string | undefined {
  const id = (req.params as { id?: unknown } | undefined)?.id;
  if (typeof id === 'string' && isSandboxId(id)) return id;
  // A create names its sandbox only in the response.
  if (req.method === 'POST' && req.routeOptions.url === '/v1/sandboxes' && reply.statusCode < 300 && typeof payload === 'string') {
    try {
      const v = (JSON.parse(payload) as { id?: unknown }).id;
      if (typeof v === 'string' && isSandboxId(v)) return v;
    } catch {
      // not JSON
    }
  }
  return undefined;
}

function errorCodeOf(payload: unknown): string | undefined {
  if (typeof payload !== 'string') return undefined;
  try {
    const code = (JSON.parse(payload) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

export function registerApiAudit(app: FastifyInstance, o: ApiAuditOptions): void {
  const peers = new WeakMap<Socket, Promise<PeerCredentials | null>>();
  app.server.on('connection', (sock: Socket) => {
    const p = peerCredentials(sock);
    p.catch(() => undefined);
    peers.set(sock, p);
  });
  const recordsCall = (req: FastifyRequest) => isAudited(req.method, req.routeOptions.url, o);

  app.addHook('onRequest', (req: Req, reply, done) => {
    void reply.header('x-request-id', req.id);
    const peer = peers.get(req.raw.socket as Socket) ?? Promise.resolve(null);
    peer.then(
      (p) => {
        const ctx: RequestContext = { requestId: req.id, actor: o.actorFor?.(req) ?? actorOf(p) };
        req[CTX] = ctx;
        requestContext.run(ctx, () => {
          req[SCOPE] = new AsyncResource('kiln-request');
          if (recordsCall(req) && !o.audit.healthy) {
            try {
              o.audit.assertWritable();
            } catch (err) {
              done(err as Error);
              return;
            }
          }
          done();
        });
      },
      (err: Error) => done(err),
    );
  });

  // Route log lines name the sandbox they are about.
  app.addHook('preHandler', (req, _reply, done) => {
    const id = (req.params as { id?: unknown } | undefined)?.id;
    if (typeof id === 'string' && isSandboxId(id)) req.log = req.log.child({ sandboxId: id });
    done();
  });

  // Body parsing runs in the socket's async context; re-enter the request's before handlers.
  app.addHook('preValidation', (req: Req, _reply, done) => {
    const scope = req[SCOPE];
    if (scope) scope.runInAsyncScope(done, req.raw);
    else done();
  });

  app.addHook('onSend', async (req: Req, reply, payload) => {
    if (req[RECORDED] || !recordsCall(req)) return payload;
    req[RECORDED] = true;
    // Already refusing because the log failed: nothing can be recorded, let the error out.
    if (!o.audit.healthy && reply.statusCode >= 400) return payload;
    const ctx = req[CTX];
    const errorCode = reply.statusCode >= 400 ? (o.errorCodeOf ?? errorCodeOf)(payload) : undefined;
    const sandboxId = o.sandboxOf ? o.sandboxOf(req, reply.statusCode, payload) : sandboxOf(req, reply, payload);
    // A policy change is recorded with the policy asked for (the api record has only the path).
    if (/\/policy$/.test(req.routeOptions.url ?? '') && req.method !== 'GET' && reply.statusCode < 300 && sandboxId) {
      void o.audit.append({ type: 'policy', sandboxId, requestId: req.id, actor: ctx?.actor ?? actorOf(null), data: { route: req.routeOptions.url ?? null, method: req.method, policy: (req.body ?? null) as Record<string, unknown> | null, ...req[DETAIL] } }).catch(() => undefined); // the api record below fails too
    }
    await o.audit.append({
      type: 'api',
      ...(sandboxId ? { sandboxId } : {}),
      requestId: req.id,
      actor: ctx?.actor ?? actorOf(null),
      data: {
        method: req.method,
        route: req.routeOptions.url ?? null,
        path: req.url,
        status: reply.statusCode,
        ...(errorCode ? { errorCode } : {}),
        durationMs: Math.round(reply.elapsedTime),
        ...req[EXTRA],
      },
    });
    return payload;
  });
}
