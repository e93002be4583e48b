import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenancyHarness } from '../testing/tenancy-harness.js';
import { newE2bKey } from '../tenancy/keys.js';

test('a failed sandbox (E2B has no such state) is 404 to getInfo and connect, absent from lists, and kill reclaims it (204)', async () => {
  const h = await tenancyHarness({ e2b: true });
  try {
    const key = newE2bKey();
    h.tenants.importKey(key, { tenant: 'acme' });
    const call = (method: string, path: string, body?: unknown) =>
      fetch(h.base + path, { method, headers: { 'x-api-key': key, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
    const made = await call('POST', '/v2/sandboxes', { templateID: 'base' });
    const id = ((await made.json()) as { sandboxID: string }).sandboxID;
    await h.manager.fail(`sb-${id}`, { code: 'VM_EXITED', message: 'the VM ended' });
    assert.equal(h.manager.get(`sb-${id}`).state, 'failed');
    assert.equal((await call('GET', `/sandboxes/${id}`)).status, 404);
    assert.equal((await call('POST', `/v2/sandboxes/${id}/connect`, {})).status, 404);
    assert.deepEqual(await (await call('GET', '/v2/sandboxes')).json(), []);
    assert.equal((await call('DELETE', `/sandboxes/${id}`)).status, 204);
    assert.equal(h.manager.list().length, 0);
  } finally {
    await h.close();
  }
});
