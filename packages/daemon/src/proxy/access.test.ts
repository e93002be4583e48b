import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { TenantStore } from '../tenancy/tenant-store.js';
import { AccessDenied, checkAccess, type AccessDeps } from './access.js';
import { PortStore } from './port-store.js';
import { signGrant } from './signing.js';

const A = `sb-${'a'.repeat(32)}`;
const B = `sb-${'b'.repeat(32)}`;

function setup(): AccessDeps & { tenants: TenantStore; db: Database.Database } {
  const db = new Database(':memory:');
  const tenants = new TenantStore(db);
  return { db, ports: new PortStore(db), secret: Buffer.alloc(32, 3), tenants, handlerPorts: new Set([49983]) };
}

const denied = (fn: () => unknown): { code: string; reason: string } => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof AccessDenied, String(err));
    return { code: err.code, reason: err.reason };
  }
  assert.fail('access was granted');
};

test('private by default: no credential 401, the right token passes, another sandbox’s token 403', () => {
  const d = setup();
  d.ports.expose(A, 3000, false);
  const route = { sandboxId: A, port: 3000, path: '/' };
  assert.deepEqual(denied(() => checkAccess(d, { headers: {} }, route, '/')), { code: 'PROXY_UNAUTHENTICATED', reason: 'no-credential' });
  assert.equal(checkAccess(d, { headers: { 'kiln-access-token': d.ports.token(A) } }, route, '/').via, 'token');
  assert.equal(checkAccess(d, { headers: { 'x-access-token': d.ports.token(A) } }, route, '/').via, 'token');
  assert.deepEqual(denied(() => checkAccess(d, { headers: { 'kiln-access-token': d.ports.token(B) } }, route, '/')), { code: 'PROXY_FORBIDDEN', reason: 'other-sandbox-token' });
  assert.deepEqual(denied(() => checkAccess(d, { headers: { 'kiln-access-token': 'nope' } }, route, '/')), { code: 'PROXY_FORBIDDEN', reason: 'unknown-token' });
});

test('an unexposed port is named only to a caller that passed; a handler port needs no exposing but is never public', () => {
  const d = setup();
  const route = { sandboxId: A, port: 4000, path: '/' };
  assert.equal(denied(() => checkAccess(d, { headers: {} }, route, '/')).code, 'PROXY_UNAUTHENTICATED');
  assert.equal(denied(() => checkAccess(d, { headers: { 'kiln-access-token': d.ports.token(A) } }, route, '/')).code, 'PORT_NOT_EXPOSED');
  const envd = { sandboxId: A, port: 49983, path: '/' };
  assert.equal(checkAccess(d, { headers: { 'x-access-token': d.ports.token(A) } }, envd, '/').via, 'token');
  d.ports.expose(A, 49983, true);
  assert.equal(denied(() => checkAccess(d, { headers: {} }, envd, '/')).code, 'PROXY_UNAUTHENTICATED');
});

test('public ports need nothing; a signed URL sets a host cookie and the cookie then passes', () => {
  const d = setup();
  d.ports.expose(A, 3000, true);
  assert.equal(checkAccess(d, { headers: {} }, { sandboxId: A, port: 3000, path: '/' }, '/').via, 'public');
  d.ports.expose(A, 3000, false);
  const sig = signGrant(d.secret, { sandboxId: A, port: 3000, exp: Math.floor(Date.now() / 1000) + 60 });
  const g = checkAccess(d, { headers: {} }, { sandboxId: A, port: 3000, path: `/x?a=1&kiln_sig=${sig}` }, '/');
  assert.equal(g.via, 'signature');
  assert.equal(g.path, '/x?a=1');
  assert.match(g.setCookie ?? '', new RegExp(`^kiln_proxy_sig=${sig.replace(/[.]/g, '\\.')}; Path=/; Max-Age=(59|60); HttpOnly; SameSite=Lax$`));
  assert.equal(checkAccess(d, { headers: { cookie: `kiln_proxy_sig=${sig}` } }, { sandboxId: A, port: 3000, path: '/app.js' }, '/').via, 'cookie');
  const expired = signGrant(d.secret, { sandboxId: A, port: 3000, exp: Math.floor(Date.now() / 1000) - 1 });
  assert.deepEqual(denied(() => checkAccess(d, { headers: {} }, { sandboxId: A, port: 3000, path: `/?kiln_sig=${expired}` }, '/')), { code: 'PROXY_FORBIDDEN', reason: 'signature-expired' });
  assert.equal(denied(() => checkAccess(d, { headers: { cookie: `kiln_proxy_sig=${expired}` } }, { sandboxId: A, port: 3000, path: '/' }, '/')).reason, 'cookie-refused');
});

test("a tenant key passes for the tenant's own sandbox only; a non-kiln Bearer is the app's", () => {
  const d = setup();
  d.ports.expose(A, 3000, false);
  d.tenants.setOwner(A, 'acme');
  const mine = d.tenants.createKey({ tenant: 'acme' }).key;
  const theirs = d.tenants.createKey({ tenant: 'other' }).key;
  const route = { sandboxId: A, port: 3000, path: '/' };
  const g = checkAccess(d, { headers: { authorization: `Bearer ${mine}` } }, route, '/');
  assert.equal(g.via, 'key');
  assert.equal(g.tenant, 'acme');
  assert.deepEqual(denied(() => checkAccess(d, { headers: { authorization: `Bearer ${theirs}` } }, route, '/')), { code: 'PROXY_FORBIDDEN', reason: 'key-other-tenant' });
  assert.equal(denied(() => checkAccess(d, { headers: { authorization: 'Bearer app-session-123' } }, route, '/')).code, 'PROXY_UNAUTHENTICATED');
});

test('a destroyed sandbox’s ports and token go', () => {
  const d = setup();
  d.ports.expose(A, 3000, false);
  const t = d.ports.token(A);
  d.ports.forget(A);
  assert.deepEqual(d.ports.list(A), []);
  assert.equal(d.ports.ownerOfToken(t), null);
  assert.notEqual(d.ports.token(A), t);
});
