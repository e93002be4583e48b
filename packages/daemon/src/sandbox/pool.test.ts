import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeHarness } from '../testing/harness.js';

const until = async (cond: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('warm pool: fills, hands a member to a matching create, refills, and never leaves members behind', async () => {
  const h = await fakeHarness({ poolSize: 2 });
  try {
    h.manager.start();
    const members = () => h.store.list().filter((r) => r.pool !== null && r.state === 'running');
    await until(() => members().length === 2);
    assert.deepEqual(h.manager.list(), [], 'members are not the user\'s sandboxes');
    const before = new Set(members().map((r) => r.id));

    const sb = await h.manager.create({ labels: { who: 'me' }, timeoutMs: 60_000 });
    assert.ok(before.has(sb.id), 'the create took a pool member');
    assert.equal(sb.pool, null);
    assert.deepEqual(sb.spec.labels, { who: 'me' });
    assert.ok(sb.expiresAt !== null);
    assert.ok(h.store.events(sb.id).some((e) => e.type === 'claimed'));
    assert.deepEqual(h.manager.list().map((r) => r.id), [sb.id]);

    const other = await h.manager.create({ memoryMiB: 512 });
    assert.ok(!before.has(other.id), 'a non-default shape is not served from the pool');

    await until(() => members().length === 2);
    await h.manager.shutdown();
    assert.equal(h.store.list().filter((r) => r.pool !== null).length, 0, 'members destroyed on shutdown');
    assert.equal(h.driver.running.size, 2, 'the user\'s sandboxes keep running');
  } finally {
    await h.close();
  }
});
