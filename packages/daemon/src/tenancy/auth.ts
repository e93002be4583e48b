/**
 * Authentication and authorization of API requests, as fastify hooks.
 *
 *  - identify (onRequest, first): a request from the unix socket is the admin's; one from the
 *    TCP listener must carry `Authorization: Bearer <key>` and becomes its tenant's. A missing,
 *    malformed, unknown, wrong or revoked key is remembered (with the key id if it parsed) so
 *    that the audit hook records the caller, then refused by `enforce`.
 *  - enforce (onRequest, after the audit hook): 401 UNAUTHENTICATED; 403 ADMIN_ONLY for routes a
 *    tenant may not call (route-policy.ts); 403 READ_ONLY_KEY; and the ownership check: every
 *    route with a sandbox `:id` param answers 404 SANDBOX_NOT_FOUND for another tenant's
 *    sandbox, exactly like an id that never existed (the audit record notes it; the tenant
 *    cannot read that record, which is filed under the other sandbox).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { KilnError, sandboxNotFound } from '../errors.js';
import { auditExtra } from '../audit/api-hook.js';
import type { AuditActor } from '../audit/record.js';
import { bearerToken, hashMatches, keyHash, parseKey, wsProtocolKey } from './keys.js';
import { ADMIN, canSee, principalOf, setPrincipal, tcpOf } from './principal.js';
import { isOpenRoute, readOnlyMayCall, tenantMayCall } from './route-policy.js';
import type { TenantStore } from './tenant-store.js';

export type AuthFailure = 'missing' | 'malformed' | 'unknown' | 'wrong' | 'revoked';

const FAILURE = Symbol('kiln.authFailure');
type Req = FastifyRequest & { [FAILURE]?: { reason: AuthFailure; keyId: string | null } };

const MESSAGES: Record<AuthFailure, string> = {
  missing: 'an API key is required: send Authorization: Bearer <key>',
  malformed: 'the Authorization header is not a well-formed API key (want Bearer kiln_<id>_<secret>)',
  unknown: 'unknown API key',
  wrong: 'wrong secret for this API key',
  revoked: 'this API key was revoked',
};

export function unauthenticated(reason: AuthFailure): KilnError {
  return new KilnError('UNAUTHENTICATED', MESSAGES[reason], { status: 401, details: { reason } });
}

/** Checks a presented key: its tenant, id and scopes, or why it is refused. */
export function authenticate(store: TenantStore, header: string | undefined): { ok: true; tenant: string; keyId: string; scopes: ReturnType<TenantStore['key']>['scopes'] } | { ok: false; reason: AuthFailure; keyId: string | null } {
  const token = bearerToken(header);
  if (token === undefined) return { ok: false, reason: 'missing', keyId: null };
  if (token === null) return { ok: false, reason: 'malformed', keyId: null };
  const parsed = parseKey(token);
  if (parsed.kind === 'malformed') return { ok: false, reason: 'malformed', keyId: null };
  const row = parsed.kind === 'kiln' ? store.keyRow(parsed.id) : store.keyByHash(keyHash(token));
  if (!row) return { ok: false, reason: 'unknown', keyId: parsed.kind === 'kiln' ? parsed.id : null };
  if (!hashMatches(token, row.hash)) return { ok: false, reason: 'wrong', keyId: row.id };
  if (row.revokedAt !== null) return { ok: false, reason: 'revoked', keyId: row.id };
  return { ok: true, tenant: row.tenant, keyId: row.id, scopes: row.scopes };
}

/** The audit actor of a TCP request (null for the unix socket: the peer's credentials are used). */
export function tcpActor(req: FastifyRequest): AuditActor | null {
  const tcp = tcpOf(req.raw);
  if (!tcp) return null;
  const failed = (req as Req)[FAILURE];
  if (failed) return { kind: 'key', keyId: failed.keyId, tenant: null, address: tcp.clientAddress };
  const p = principalOf(req);
  return { kind: 'key', keyId: p.keyId ?? null, tenant: p.kind === 'tenant' ? p.tenant : null, address: tcp.clientAddress };
}

export function registerAuthIdentify(app: FastifyInstance, store: TenantStore | null): void {
  app.addHook('onRequest', (req: Req, _reply, done) => {
    if (!tcpOf(req.raw) || !store) {
      setPrincipal(req, ADMIN, store);
      return done();
    }
    // A browser's WebSocket cannot send Authorization: it offers the key as a subprotocol.
    const header = req.headers.authorization ?? (req.headers.upgrade ? wsProtocolKey(req.headers['sec-websocket-protocol']) : undefined);
    const r = authenticate(store, header);
    if (r.ok) {
      const admin = r.scopes.includes('admin');
      setPrincipal(req, admin ? { kind: 'admin', keyId: r.keyId, scopes: r.scopes } : { kind: 'tenant', tenant: r.tenant, keyId: r.keyId, scopes: r.scopes }, store);
      store.touchKey(r.keyId);
    } else {
      req[FAILURE] = { reason: r.reason, keyId: r.keyId };
      // Until refused below, the request is nobody's: a tenant that sees nothing.
      setPrincipal(req, { kind: 'tenant', tenant: '', keyId: '', scopes: [] }, store);
    }
    done();
  });
}

export function registerAuthEnforce(app: FastifyInstance): void {
  app.addHook('onRequest', (req: Req, _reply, done) => {
    if (!tcpOf(req.raw)) return done();
    const method = req.method;
    const url = req.routeOptions.url;
    const failed = req[FAILURE];
    if (failed && !isOpenRoute(method, url)) {
      auditExtra(req, { auth: failed.reason });
      return done(unauthenticated(failed.reason));
    }
    const p = principalOf(req);
    if (failed) return done();
    if (p.kind === 'admin') {
      // An admin key may do what the socket may; with read-only too, it may only read.
      if (p.scopes?.includes('read-only') && !readOnlyMayCall(method, url, req.headers.upgrade !== undefined)) {
        return done(new KilnError('READ_ONLY_KEY', `this API key is read-only; ${method} ${url ?? req.url} changes things`, { status: 403 }));
      }
      return done();
    }
    if (!tenantMayCall(method, url)) return done(new KilnError('ADMIN_ONLY', `${method} ${url ?? req.url} is for the admin (the unix socket) only`, { status: 403 }));
    if (p.scopes.includes('read-only') && !readOnlyMayCall(method, url, req.headers.upgrade !== undefined)) {
      return done(new KilnError('READ_ONLY_KEY', `this API key is read-only; ${method} ${url ?? req.url} changes things`, { status: 403 }));
    }
    const id = (req.params as { id?: unknown } | undefined)?.id;
    if ((url ?? '').startsWith('/v1/sandboxes/:id') && typeof id === 'string' && !canSee(req, id)) {
      auditExtra(req, { crossTenant: true });
      return done(sandboxNotFound(id));
    }
    done();
  });
}
