/**
 * Authentication on the E2B surface: the SDK sends its key in `X-API-KEY` (headers are
 * case-insensitive), never `Authorization`. The key is one of kiln's API keys — an E2B-shaped
 * `e2b_<40 hex>` made by `kiln key create --e2b`, or a kiln key — and the request becomes its
 * tenant's, exactly as a Bearer key on kiln's own API (same store, scopes and revocation).
 * Anything else is 401 in E2B's error shape (the SDK raises AuthenticationError). The E2B
 * surface has no admin: the unix socket is kiln's own API.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authenticate, unauthenticated } from '../tenancy/auth.js';
import { setPrincipal, tenantOf } from '../tenancy/principal.js';
import type { TenantStore } from '../tenancy/tenant-store.js';
import { KilnError } from '../errors.js';

const MESSAGES = {
  missing: 'an API key is required: send X-API-KEY: <key> (E2B_API_KEY)',
  malformed: 'the X-API-KEY header is not a kiln API key (want e2b_<40 hex> or kiln_<id>_<secret>)',
} as const;

export function registerE2bAuth(app: FastifyInstance, store: TenantStore): void {
  app.addHook('onRequest', (req, _reply, done) => {
    // The control plane's own health check is open, as E2B's is.
    if (req.method === 'GET' && req.routeOptions.url === '/health') return done();
    const raw = req.headers['x-api-key'];
    const key = Array.isArray(raw) ? raw[0] : raw;
    const r = authenticate(store, key === undefined ? undefined : `Bearer ${key.trim()}`);
    if (!r.ok) {
      const m = r.reason === 'missing' || r.reason === 'malformed' ? MESSAGES[r.reason] : unauthenticated(r.reason).message;
      return done(new KilnError('UNAUTHENTICATED', m, { status: 401, details: { reason: r.reason } }));
    }
    setPrincipal(req, { kind: 'tenant', tenant: r.tenant, keyId: r.keyId, scopes: r.scopes }, store);
    store.touchKey(r.keyId);
    if (r.scopes.includes('read-only') && req.method !== 'GET') return done(new KilnError('READ_ONLY_KEY', `this API key is read-only; ${req.method} ${req.url.split('?')[0]} changes things`, { status: 403 }));
    done();
  });
}

/** The tenant of an authenticated E2B request. */
export function e2bTenant(req: FastifyRequest): string {
  const t = tenantOf(req);
  if (t === null) throw new KilnError('UNAUTHENTICATED', MESSAGES.missing, { status: 401, details: { reason: 'missing' } });
  return t;
}
