/**
 * Authentication on the E2B surface: the SDK sends its key in `X-API-KEY` (headers are
 * case-insensitive), never `Authorization`. The key is one of kiln's API keys — an E2B-shaped
 * `e2b_<40 hex>` made by `kiln key create --e2b`, or a kiln key — and the request becomes its
 * tenant's, exactly as a Bearer key on kiln's own API (same store, scopes and revocation).
 * Anything else is 401 in E2B's error shape (the SDK raises AuthenticationError). The E2B
 * surface has no admin: the unix socket is kiln's own API.
 *
 * As on kiln's API, two hooks with the audit hook between them: identify (who is calling, or
 * why the key is refused), then enforce — so refused calls are audited with the key id.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditActor } from '../audit/record.js';
import { auditExtra } from '../audit/api-hook.js';
import { authenticate, unauthenticated, type AuthFailure } from '../tenancy/auth.js';
import { principalOf, setPrincipal, tcpOf, tenantOf } from '../tenancy/principal.js';
import type { TenantStore } from '../tenancy/tenant-store.js';
import { KilnError } from '../errors.js';

const MESSAGES = {
  missing: 'an API key is required: send X-API-KEY: <key> (E2B_API_KEY)',
  malformed: 'the X-API-KEY header is not a kiln API key (want e2b_<40 hex> or kiln_<id>_<secret>)',
} as const;

const FAILURE = Symbol('kiln.e2bAuthFailure');
type Req = FastifyRequest & { [FAILURE]?: { reason: AuthFailure; keyId: string | null } };

/** The control plane's own health check is open, as E2B's is. */
const isOpen = (req: FastifyRequest): boolean => req.method === 'GET' && req.routeOptions.url === '/health';

export function registerE2bIdentify(app: FastifyInstance, store: TenantStore): void {
  app.addHook('onRequest', (req: Req, _reply, done) => {
    const raw = req.headers['x-api-key'];
    const key = Array.isArray(raw) ? raw[0] : raw;
    const r = authenticate(store, key === undefined ? undefined : `Bearer ${key.trim()}`);
    if (r.ok) {
      setPrincipal(req, { kind: 'tenant', tenant: r.tenant, keyId: r.keyId, scopes: r.scopes }, store);
      store.touchKey(r.keyId);
    } else {
      req[FAILURE] = { reason: r.reason, keyId: r.keyId };
      setPrincipal(req, { kind: 'tenant', tenant: '', keyId: '', scopes: [] }, store);
    }
    done();
  });
}

export function registerE2bEnforce(app: FastifyInstance): void {
  app.addHook('onRequest', (req: Req, _reply, done) => {
    if (isOpen(req)) return done();
    const failed = req[FAILURE];
    if (failed) {
      auditExtra(req, { auth: failed.reason });
      const m = failed.reason === 'missing' || failed.reason === 'malformed' ? MESSAGES[failed.reason] : unauthenticated(failed.reason).message;
      return done(new KilnError('UNAUTHENTICATED', m, { status: 401, details: { reason: failed.reason } }));
    }
    const p = principalOf(req);
    if (p.kind === 'tenant' && p.scopes.includes('read-only') && req.method !== 'GET') {
      return done(new KilnError('READ_ONLY_KEY', `this API key is read-only; ${req.method} ${req.url.split('?')[0]} changes things`, { status: 403 }));
    }
    done();
  });
}

/** The audit actor of an E2B request: the key (or the refused key's id) and the client address. */
export function e2bActor(req: FastifyRequest): AuditActor {
  const failed = (req as Req)[FAILURE];
  const address = tcpOf(req.raw)?.clientAddress ?? req.socket.remoteAddress ?? null;
  if (failed) return { kind: 'key', keyId: failed.keyId, tenant: null, address };
  const p = principalOf(req);
  return { kind: 'key', keyId: p.kind === 'tenant' ? p.keyId : null, tenant: p.kind === 'tenant' ? p.tenant : null, address };
}

/** The tenant of an authenticated E2B request. */
export function e2bTenant(req: FastifyRequest): string {
  const t = tenantOf(req);
  if (t === null || t === '') throw new KilnError('UNAUTHENTICATED', MESSAGES.missing, { status: 401, details: { reason: 'missing' } });
  return t;
}
