/**
 * E2B's per-sandbox lifecycle routes:
 *   GET    /sandboxes/{id}                 → 200 SandboxDetail (getInfo)
 *   DELETE /sandboxes/{id}                 → 204; 404 {code:404} makes Sandbox.kill() return false
 *   POST   /sandboxes/{id}/timeout         {timeout: s} → 204 (sets the end to now + timeout; may shorten)
 *   POST   /sandboxes/{id}/refreshes       {duration?: s} → 204 (extends only)
 *   POST   /sandboxes/{id}/pause           → 204; 409 when already paused (pause() → false)
 *   POST   /v2/sandboxes/{id}/connect      {timeout?: s} → 200 running / 201 resumed, Sandbox
 *   POST   /sandboxes/{id}/connect         {timeout: s}  → same (SDK ≤2.50)
 *   POST   /sandboxes/{id}/resume          {timeout?: s} → 201 Sandbox; 409 if it is running (SDK ≤2.4)
 * A paused sandbox does not expire (E2B keeps paused sandboxes until they are killed or
 * resumed): pausing clears its timeout, and resuming sets it again (the given one, else 300 s).
 * A sandbox created with lifecycle.onTimeout 'pause' has no kiln timeout: its end is the pause
 * timer's (on-timeout.ts).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { KilnError } from '../errors.js';
import type { SandboxManager } from '../sandbox/manager.js';
import { DEFAULT_TIMEOUT_S } from './create.js';
import type { PauseOnTimeout } from './on-timeout.js';
import { findSandbox, type Found } from './lookup.js';
import type { E2bStore } from './store.js';
import { detailBody, sandboxBody, type E2bContext } from './views.js';

const IdParams = Type.Object({ id: Type.String({ maxLength: 128 }) });
type Id = { Params: Static<typeof IdParams> };
const Seconds = Type.Integer({ minimum: 0, maximum: 7 * 24 * 3600 });
const TimeoutBody = Type.Object({ timeout: Seconds });
const OptionalTimeoutBody = Type.Object({ timeout: Type.Optional(Seconds), memory: Type.Optional(Type.Boolean()), autoPause: Type.Optional(Type.Boolean()) });
const RefreshBody = Type.Object({ duration: Type.Optional(Seconds) });
const PauseBody = Type.Object({ memory: Type.Optional(Type.Boolean()) });

const conflict = (msg: string): KilnError => new KilnError('E2B_STATE_CONFLICT', msg, { status: 409 });

export function registerLifecycleRoutes(app: FastifyInstance, manager: SandboxManager, store: E2bStore, ctx: E2bContext, onTimeout: PauseOnTimeout): void {
  const find = (req: Parameters<typeof findSandbox>[0], id: string): Found => findSandbox(req, manager, store, id);
  const pausesAtTimeout = (f: Found): boolean => f.row.onTimeout === 'pause';

  /** Sets the end to now + s: kiln's timeout, or the pause timer of a pause-on-timeout sandbox (0 = none). */
  const setEnd = (f: Found, s: number): void => {
    if (!pausesAtTimeout(f)) return void manager.setTimeout(f.rec.id, s * 1000);
    if (s > 0) onTimeout.arm(f.rec.id, Date.now() + s * 1000);
    else onTimeout.clear(f.rec.id, { forget: true });
  };

  /** Extends (never shortens) a running sandbox's end to now + s. */
  const extend = (f: Found, s: number | undefined): void => {
    const end = pausesAtTimeout(f) ? (f.row.endAt ?? null) : f.rec.expiresAt;
    if (s === undefined || end === null) return;
    if (Date.now() + s * 1000 > end) setEnd(f, s);
  };

  /**
   * Resumes a paused sandbox and arms its timeout again. One that kiln's auto-pause paused
   * (`pausedBy: 'auto'`, issue 13) is woken the way traffic wakes it, keeping its own timeout
   * (auto-pause stops that clock while it sleeps); a given timeout still extends it.
   */
  const resume = async (f: Found, s: number | undefined): Promise<void> => {
    if ((f.rec as { pausedBy?: string | null }).pausedBy === 'auto') {
      await manager.wake(f.rec.id);
      extend({ ...f, rec: manager.get(f.rec.id) }, s);
      return;
    }
    await manager.resume(f.rec.id);
    setEnd(f, s ?? DEFAULT_TIMEOUT_S);
  };

  app.get<Id>('/sandboxes/:id', { schema: { params: IdParams } }, async (req) => {
    const f = find(req, req.params.id);
    return detailBody(f.rec, f.row, ctx);
  });

  app.delete<Id>('/sandboxes/:id', { schema: { params: IdParams } }, async (req, reply) => {
    const f = findSandbox(req, manager, store, req.params.id, { kill: true });
    onTimeout.clear(f.rec.id);
    await manager.destroy(f.rec.id);
    store.delete(f.rec.id);
    return reply.status(204).send();
  });

  app.post<Id & { Body: Static<typeof TimeoutBody> }>('/sandboxes/:id/timeout', { schema: { params: IdParams, body: TimeoutBody } }, async (req, reply) => {
    setEnd(find(req, req.params.id), req.body.timeout);
    return reply.status(204).send();
  });

  app.post<Id & { Body: Static<typeof RefreshBody> }>('/sandboxes/:id/refreshes', { schema: { params: IdParams, body: RefreshBody } }, async (req, reply) => {
    extend(find(req, req.params.id), req.body?.duration ?? 60);
    return reply.status(204).send();
  });

  app.post<Id & { Body: Static<typeof PauseBody> }>('/sandboxes/:id/pause', { schema: { params: IdParams, body: PauseBody } }, async (req, reply) => {
    const f = find(req, req.params.id);
    if (f.rec.state === 'paused') throw conflict(`sandbox "${req.params.id}" is already paused`);
    await manager.pause(f.rec.id);
    if (pausesAtTimeout(f)) onTimeout.clear(f.rec.id);
    else manager.setTimeout(f.rec.id, 0);
    return reply.status(204).send();
  });

  const connect = async (req: FastifyRequest<Id & { Body: { timeout?: number } }>, reply: FastifyReply) => {
    const f = find(req, req.params.id);
    if (f.rec.state === 'paused') {
      await resume(f, req.body?.timeout);
      return reply.status(201).send(sandboxBody(manager.get(f.rec.id), f.row, ctx));
    }
    extend(f, req.body?.timeout);
    return reply.status(200).send(sandboxBody(manager.get(f.rec.id), f.row, ctx));
  };
  app.post<Id & { Body: Static<typeof OptionalTimeoutBody> }>('/v2/sandboxes/:id/connect', { schema: { params: IdParams, body: OptionalTimeoutBody } }, connect);
  app.post<Id & { Body: Static<typeof TimeoutBody> }>('/sandboxes/:id/connect', { schema: { params: IdParams, body: TimeoutBody } }, connect);

  app.post<Id & { Body: Static<typeof OptionalTimeoutBody> }>('/sandboxes/:id/resume', { schema: { params: IdParams, body: OptionalTimeoutBody } }, async (req, reply) => {
    const f = find(req, req.params.id);
    if (f.rec.state !== 'paused') throw conflict(`sandbox "${req.params.id}" is already running`);
    await resume(f, req.body?.timeout);
    return reply.status(201).send(sandboxBody(manager.get(f.rec.id), f.row, ctx));
  });
}
