/**
 * Who may use a sandbox port through the proxy (docs/ports.md). In order:
 *   a public port: anyone;
 *   the sandbox's access token in Kiln-Access-Token or X-Access-Token (E2B's name);
 *   a signed URL (`?kiln_sig=`), which then also sets a cookie for the page's sub-resources;
 *   that cookie;
 *   a tenant API key (`Authorization: Bearer kiln_…`) of the tenant that owns the sandbox.
 * No credential: 401 PROXY_UNAUTHENTICATED. A credential that does not fit (another
 * sandbox's token, a bad or expired signature, another tenant's key): 403 PROXY_FORBIDDEN.
 * A port that is not exposed answers 403 PORT_NOT_EXPOSED — but only to a caller that passed,
 * so nobody without access learns which ports a sandbox has.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { KilnError } from '../errors.js';
import { authenticate } from '../tenancy/auth.js';
import { bearerToken } from '../tenancy/keys.js';
import type { TenantStore } from '../tenancy/tenant-store.js';
import type { PortStore } from './port-store.js';
import { cookieToken, SIG_COOKIE, takeSignature, verifyGrant } from './signing.js';

export type Credential = 'public' | 'token' | 'signature' | 'cookie' | 'key';

export interface AccessGranted {
  via: Credential;
  /** The path to forward (the signature removed). */
  path: string;
  /** A Set-Cookie value to add to the response (after a signed URL). */
  setCookie: string | null;
  keyId: string | null;
  tenant: string | null;
}

export interface AccessDeps {
  ports: PortStore;
  secret: Buffer;
  tenants: TenantStore | null;
  /** Ports that have a kilnd handler (e.g. E2B's envd): reachable without being exposed, never public. */
  handlerPorts: ReadonlySet<number>;
}

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

export class AccessDenied extends KilnError {
  constructor(code: 'PROXY_UNAUTHENTICATED' | 'PROXY_FORBIDDEN' | 'PORT_NOT_EXPOSED', message: string, readonly reason: string, readonly keyId: string | null = null) {
    super(code, message, { details: { reason } });
  }
}

/** Grants access or throws AccessDenied. `cookiePath`: where the cookie applies ("/" for host routes). */
export function checkAccess(deps: AccessDeps, req: { headers: IncomingHttpHeaders }, route: { sandboxId: string; port: number; path: string }, cookiePath: string): AccessGranted {
  const exposed = deps.ports.get(route.sandboxId, route.port);
  const { token: sig, path } = takeSignature(route.path);
  const base = { path, setCookie: null, keyId: null, tenant: null };
  if (exposed?.public && !deps.handlerPorts.has(route.port)) return { ...base, via: 'public' };
  const granted = credential(deps, req, route, sig, path, cookiePath);
  if (!exposed && !deps.handlerPorts.has(route.port)) {
    throw new AccessDenied('PORT_NOT_EXPOSED', `sandbox ${route.sandboxId} does not expose port ${route.port} (kiln port expose ${route.sandboxId} ${route.port})`, 'not-exposed', granted.keyId);
  }
  return granted;
}

function credential(deps: AccessDeps, req: { headers: IncomingHttpHeaders }, route: { sandboxId: string; port: number }, sig: string | null, path: string, cookiePath: string): AccessGranted {
  const h = req.headers;
  const token = first(h['kiln-access-token']) ?? first(h['x-access-token']);
  if (token !== undefined) {
    const owner = deps.ports.ownerOfToken(token);
    if (owner === route.sandboxId) return { via: 'token', path, setCookie: null, keyId: null, tenant: null };
    throw new AccessDenied('PROXY_FORBIDDEN', owner ? "the access token is another sandbox's" : 'unknown access token', owner ? 'other-sandbox-token' : 'unknown-token');
  }
  if (sig !== null) {
    const v = verifyGrant(deps.secret, sig, route);
    if (!v.ok) throw new AccessDenied('PROXY_FORBIDDEN', `signed URL refused: ${v.reason}`, `signature-${v.reason}`);
    const maxAge = Math.max(0, v.grant.exp - Math.floor(Date.now() / 1000));
    const setCookie = `${SIG_COOKIE}=${sig}; Path=${cookiePath}; Max-Age=${maxAge}; HttpOnly; SameSite=Lax`;
    return { via: 'signature', path, setCookie, keyId: null, tenant: null };
  }
  const cookie = cookieToken(first(h.cookie));
  if (cookie !== null) {
    const v = verifyGrant(deps.secret, cookie, route);
    if (v.ok) return { via: 'cookie', path, setCookie: null, keyId: null, tenant: null };
    // A stale cookie of another grant falls through to the other credentials.
  }
  const bearer = bearerToken(first(h.authorization));
  if (bearer && bearer.startsWith('kiln_') && deps.tenants) {
    const a = authenticate(deps.tenants, first(h.authorization));
    if (!a.ok) throw new AccessDenied('PROXY_FORBIDDEN', `API key refused: ${a.reason}`, `key-${a.reason}`, a.keyId);
    if (deps.tenants.ownerOf(route.sandboxId) !== a.tenant) throw new AccessDenied('PROXY_FORBIDDEN', "the API key's tenant does not own this sandbox", 'key-other-tenant', a.keyId);
    return { via: 'key', path, setCookie: null, keyId: a.keyId, tenant: a.tenant };
  }
  if (cookie !== null) throw new AccessDenied('PROXY_FORBIDDEN', 'the proxy cookie is expired or for another sandbox or port', 'cookie-refused');
  throw new AccessDenied('PROXY_UNAUTHENTICATED', 'this port is private: send Kiln-Access-Token (or X-Access-Token), open a signed URL (kiln url), or send a tenant API key', 'no-credential');
}
