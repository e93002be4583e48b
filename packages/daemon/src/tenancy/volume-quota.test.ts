import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { tenancyHarness } from '../testing/tenancy-harness.js';
import { TenantStore } from './tenant-store.js';

type Err = { error: { code: string; message: string; details?: Record<string, unknown> } };
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

test("tenant limits: maxVolumeGiB defaults to kilnd's value and is set like the other limits", () => {
  const db = new Database(':memory:');
  assert.equal(new TenantStore(db).limits('a').maxVolumeGiB, 100);
  const s = new TenantStore(db, { maxVolumeGiB: 7 });
  assert.equal(s.limits('a').maxVolumeGiB, 7, 'the kilnd-wide default');
  s.setLimits('a', { maxSandboxes: 3 });
  assert.equal(s.limits('a').maxVolumeGiB, 7, 'setting another limit keeps the default');
  s.setLimits('a', { maxVolumeGiB: 2 });
  assert.deepEqual([s.limits('a').maxVolumeGiB, s.limits('a').maxSandboxes, s.limits('b').maxVolumeGiB], [2, 3, 7]);
});

test('volume quota per tenant: PUT /v1/tenants sets it, a create past it is 429 VOLUME_QUOTA naming the tenant, its use and limit; lowering it removes nothing', async () => {
  const h = await tenancyHarness({ volumeQuotaGiB: 1 });
  try {
    const a = h.tenants.createKey({ tenant: 'a' }).key;
    const b = h.tenants.createKey({ tenant: 'b' }).key;
    const create = (key: string, name: string, sizeBytes: number) => h.fetch('/v1/volumes', { method: 'POST', key, body: JSON.stringify({ name, sizeBytes }) });

    // The default (kilnd's 1 GiB) for both.
    assert.equal((await create(a, 'one', 768 * MiB)).status, 201);
    const over = await create(a, 'two', 512 * MiB);
    assert.equal(over.status, 429);
    const e = ((await over.json()) as Err).error;
    assert.equal(e.code, 'VOLUME_QUOTA');
    assert.match(e.message, /tenant a/);
    assert.match(e.message, /0\.75 GiB in use/);
    assert.match(e.message, /limit of 1 GiB/);
    assert.deepEqual(e.details, { limit: 'maxVolumeGiB', tenant: 'a', quotaBytes: GiB, usedBytes: 768 * MiB, sizeBytes: 512 * MiB });

    // The admin raises a's limit; b keeps the default.
    const put = await h.app.inject({ method: 'PUT', url: '/v1/tenants/a', payload: { maxVolumeGiB: 2 } });
    assert.equal(put.statusCode, 200);
    assert.equal((put.json() as { limits: { maxVolumeGiB: number } }).limits.maxVolumeGiB, 2);
    assert.equal((await create(a, 'two', 512 * MiB)).status, 201);
    assert.equal((await create(b, 'big', 1536 * MiB)).status, 429, "b's limit is still the default");

    // Usage and limit wherever limits are shown: the tenant's volume list and the admin's tenant view.
    const list = (await (await h.fetch('/v1/volumes', { key: a })).json()) as { usedBytes: number; quotaBytes: number };
    assert.deepEqual([list.usedBytes, list.quotaBytes], [1280 * MiB, 2 * GiB]);
    const view = (await h.app.inject({ method: 'GET', url: '/v1/tenants/a' })).json() as { limits: { maxVolumeGiB: number }; usage: { volumeBytes: number } };
    assert.deepEqual([view.limits.maxVolumeGiB, view.usage.volumeBytes], [2, 1280 * MiB]);

    // Lowered below the use: new volumes are refused, existing ones stay.
    await h.app.inject({ method: 'PUT', url: '/v1/tenants/a', payload: { maxVolumeGiB: 1 } });
    const refused = await create(a, 'three', 16 * MiB);
    assert.equal(refused.status, 429);
    assert.match(((await refused.json()) as Err).error.message, /1\.25 GiB in use/);
    const names = ((await (await h.fetch('/v1/volumes', { key: a })).json()) as { volumes: Array<{ name: string }> }).volumes.map((v) => v.name);
    assert.deepEqual(names, ['one', 'two']);
    // The admin's own volumes are under kilnd's value, not a tenant's.
    assert.equal((await h.app.inject({ method: 'GET', url: '/v1/volumes' })).json<{ quotaBytes: number }>().quotaBytes, GiB);
  } finally {
    await h.close();
  }
});
