import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tenancyHarness } from '../testing/tenancy-harness.js';
import type { AuditRecord } from '../audit/record.js';

type Err = { error: { code: string; message: string; details?: { reason?: string } } };

const auditText = (dir: string): string =>
  readdirSync(join(dir, 'audit'))
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => readFileSync(join(dir, 'audit', f), 'utf8'))
    .join('');
const auditRecords = (dir: string): AuditRecord[] =>
  auditText(dir)
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditRecord);

test('TCP: a missing, malformed, unknown, wrong or revoked key is 401 UNAUTHENTICATED saying which, and audited without the key', async () => {
  const h = await tenancyHarness();
  try {
    const good = h.tenants.createKey({ tenant: 'acme' });
    const revoked = h.tenants.createKey({ tenant: 'acme' });
    h.tenants.revokeKey(revoked.info.id);
    const wrongSecret = good.key.slice(0, -4) + (good.key.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const unknown = `kiln_0123456789abcdef_${'A'.repeat(43)}`;
    const cases: Array<[string, RequestInit & { key?: string }, string, string | null]> = [
      ['missing', {}, 'missing', null],
      ['not bearer', { headers: { authorization: `Basic ${good.key}` } }, 'malformed', null],
      ['malformed', { key: 'kiln_nope' }, 'malformed', null],
      ['unknown', { key: unknown }, 'unknown', '0123456789abcdef'],
      ['wrong secret', { key: wrongSecret }, 'wrong', good.info.id],
      ['revoked', { key: revoked.key }, 'revoked', revoked.info.id],
    ];
    for (const [name, init, reason, keyId] of cases) {
      const res = await h.fetch('/v1/sandboxes', init);
      assert.equal(res.status, 401, name);
      const j = (await res.json()) as Err;
      assert.equal(j.error.code, 'UNAUTHENTICATED', name);
      assert.equal(j.error.details?.reason, reason, name);
      const rec = auditRecords(h.stateDir).filter((r) => r.type === 'api').at(-1);
      assert.equal(rec?.data.status, 401, name);
      assert.equal(rec?.data.auth, reason, name);
      assert.deepEqual(rec?.actor, { kind: 'key', keyId, tenant: null, address: '127.0.0.1' }, name);
    }
    // The good key works, and no key's secret part is anywhere in the audit log.
    assert.equal((await h.fetch('/v1/sandboxes', { key: good.key })).status, 200);
    const text = auditText(h.stateDir);
    for (const k of [good.key, revoked.key, wrongSecret]) assert.ok(!text.includes(k.slice(22)), 'a key secret is in the audit log');
    // Only hashes are stored.
    assert.ok(!readFileSync(join(h.stateDir, 'kiln.db')).includes(Buffer.from(good.key.slice(22))));
  } finally {
    await h.close();
  }
});

test('TCP: health is open; keys, tenants and gc are the admin socket only (403 ADMIN_ONLY with a valid key)', async () => {
  const h = await tenancyHarness();
  try {
    assert.equal((await h.fetch('/v1/health')).status, 200);
    const { key } = h.tenants.createKey({ tenant: 'acme' });
    for (const [method, path, body] of [
      ['POST', '/v1/keys', { tenant: 'acme' }],
      ['GET', '/v1/keys', undefined],
      ['DELETE', '/v1/keys/0123456789abcdef', undefined],
      ['PUT', '/v1/tenants/acme', { maxSandboxes: 100 }],
      ['GET', '/v1/tenants', undefined],
      ['POST', '/v1/gc', undefined],
      ['GET', '/v1/audit/verify', undefined],
    ] as const) {
      const res = await h.fetch(path, { method, key, ...(body ? { body: JSON.stringify(body) } : {}) });
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal(((await res.json()) as Err).error.code, 'ADMIN_ONLY');
      // Without a key it is 401 first.
      assert.equal((await h.fetch(path, { method, ...(body ? { body: JSON.stringify(body) } : {}) })).status, 401);
    }
    // Over the unix socket (the admin) they work.
    const made = await h.app.inject({ method: 'POST', url: '/v1/keys', payload: { tenant: 'acme', name: 'ci', scopes: ['read-only'] } });
    assert.equal(made.statusCode, 201, made.body);
    const k = made.json() as { id: string; key: string; scopes: string[] };
    assert.match(k.key, /^kiln_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(k.scopes, ['read-only']);
    const listed = (await h.app.inject({ method: 'GET', url: '/v1/keys' })).json() as { keys: Array<Record<string, unknown>> };
    assert.equal(listed.keys.length, 2);
    assert.ok(listed.keys.every((x) => !('key' in x) && !('hash' in x)), 'a listing never shows a key or its hash');
    assert.equal((await h.app.inject({ method: 'DELETE', url: `/v1/keys/${k.id}` })).statusCode, 200);
    assert.equal((await h.fetch('/v1/sandboxes', { key: k.key })).status, 401);
  } finally {
    await h.close();
  }
});

test('TCP: an E2B-style key is found by the hash of its full value', async () => {
  const h = await tenancyHarness();
  try {
    const key = `e2b_${'ab'.repeat(20)}`;
    h.tenants.importKey(key, { tenant: 'acme' });
    assert.equal((await h.fetch('/v1/sandboxes', { key })).status, 200);
    assert.equal((await h.fetch('/v1/sandboxes', { key: `e2b_${'cd'.repeat(20)}` })).status, 401);
  } finally {
    await h.close();
  }
});

test('OpenAPI declares the bearer scheme, required everywhere but health', async () => {
  const h = await tenancyHarness();
  try {
    const doc = (await (await h.fetch('/openapi.json', { key: h.tenants.createKey({ tenant: 'a' }).key })).json()) as {
      components: { securitySchemes: Record<string, { type: string; scheme: string }> };
      security: unknown[];
      paths: Record<string, Record<string, { security?: unknown[] }>>;
    };
    assert.equal(doc.components.securitySchemes.apiKey?.type, 'http');
    assert.equal(doc.components.securitySchemes.apiKey?.scheme, 'bearer');
    assert.deepEqual(doc.security, [{ apiKey: [] }]);
    assert.deepEqual(doc.paths['/v1/health']?.get?.security, []);
    assert.ok(doc.paths['/v1/keys']?.post, 'the key routes are described');
  } finally {
    await h.close();
  }
});
