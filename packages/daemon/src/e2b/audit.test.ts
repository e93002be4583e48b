import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tenancyHarness } from '../testing/tenancy-harness.js';
import { newE2bKey } from '../tenancy/keys.js';
import type { AuditRecord } from '../audit/record.js';

const apiRecords = (dir: string): AuditRecord[] =>
  readdirSync(join(dir, 'audit'))
    .filter((f) => f.endsWith('.jsonl'))
    .flatMap((f) => readFileSync(join(dir, 'audit', f), 'utf8').split('\n').filter(Boolean))
    .map((l) => JSON.parse(l) as AuditRecord)
    .filter((r) => r.type === 'api');

test('E2B calls are audited like kiln API calls: the key, tenant and address; the sandbox (kiln id); a refused key with its reason and id, never the key', async () => {
  const h = await tenancyHarness({ e2b: true });
  try {
    const key = newE2bKey();
    const info = h.tenants.importKey(key, { tenant: 'acme' });
    const made = await fetch(`${h.base}/v2/sandboxes`, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: JSON.stringify({ templateID: 'base' }) });
    assert.equal(made.status, 201);
    const id = ((await made.json()) as { sandboxID: string }).sandboxID;
    await fetch(`${h.base}/sandboxes/${id}`, { headers: { 'x-api-key': key } });
    const wrong = newE2bKey();
    assert.equal((await fetch(`${h.base}/sandboxes/${id}`, { method: 'DELETE', headers: { 'x-api-key': wrong } })).status, 401);
    const recs = apiRecords(h.stateDir);
    const create = recs.find((r) => r.data.route === '/v2/sandboxes' && r.data.method === 'POST');
    assert.equal(create?.sandboxId, `sb-${id}`);
    assert.deepEqual(create?.actor, { kind: 'key', keyId: info.id, tenant: 'acme', address: '127.0.0.1' });
    assert.equal(create?.data.status, 201);
    const get = recs.find((r) => r.data.route === '/sandboxes/:id' && r.data.method === 'GET');
    assert.equal(get?.sandboxId, `sb-${id}`);
    const refused = recs.find((r) => r.data.method === 'DELETE');
    assert.equal(refused?.data.status, 401);
    assert.equal(refused?.data.auth, 'unknown');
    assert.equal(refused?.data.errorCode, 'UNAUTHENTICATED');
    assert.deepEqual(refused?.actor, { kind: 'key', keyId: null, tenant: null, address: '127.0.0.1' });
    const text = readdirSync(join(h.stateDir, 'audit')).map((f) => readFileSync(join(h.stateDir, 'audit', f), 'utf8')).join('');
    assert.ok(!text.includes(key.slice(4)) && !text.includes(wrong.slice(4)), 'no key in the audit log');
    assert.equal(h.manager.get(`sb-${id}`).state, 'running');
  } finally {
    await h.close();
  }
});
