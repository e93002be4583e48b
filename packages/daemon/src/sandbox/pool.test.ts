import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeHarness } from '../testing/harness.js';
import { FakeNetwork } from '../testing/fake-network.js';

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

test('concurrent creates never share a member: each gets its own sandbox, and its own policy is the one in force', async () => {
  const network = new FakeNetwork(20);
  const h = await fakeHarness({ poolSize: 2, network });
  try {
    h.manager.start();
    await until(() => h.store.list().filter((r) => r.pool !== null && r.state === 'running').length === 2);
    const pooled = new Set(h.store.list().map((r) => r.id));
    const allow = (i: number) => ({ preset: 'locked' as const, allow: [{ cidr: `198.51.100.${i + 1}/32`, protocol: 'tcp' as const, ports: [443] }] });
    const made = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => h.manager.create({ network: allow(i) })));
    const ids = made.map((s) => s.id);
    assert.equal(new Set(ids).size, 6, `distinct ids: ${ids.join(' ')}`);
    assert.equal(ids.filter((id) => pooled.has(id)).length, 2, 'both members were handed out, once each');
    made.forEach((s, i) => {
      assert.equal(s.pool, null);
      assert.deepEqual(network.get(s.id)?.policy.allow.map((r) => r.cidr), [`198.51.100.${i + 1}/32`], `${s.id} runs its caller's policy`);
    });
    assert.equal(h.manager.list().length, 6);
  } finally {
    await h.manager.shutdown({ destroyAll: true });
    await h.close();
  }
});

test('a claim whose policy change fails discards the member and the caller still gets a sandbox with its policy', async () => {
  const network = new FakeNetwork(5);
  const h = await fakeHarness({ poolSize: 1, network });
  try {
    h.manager.start();
    await until(() => h.store.list().some((r) => r.pool !== null && r.state === 'running'));
    const [member] = h.store.list();
    network.failSetPolicy = new Error('nft: no such table');
    const sb = await h.manager.create({ network: { preset: 'locked', allow: [{ cidr: '203.0.113.9/32' }] } });
    network.failSetPolicy = null;
    assert.notEqual(sb.id, member?.id, 'the member whose policy failed is not handed out');
    assert.equal(sb.state, 'running');
    assert.deepEqual(network.get(sb.id)?.policy.allow.map((r) => r.cidr), ['203.0.113.9/32']);
    await until(() => h.store.get(member?.id ?? '') === null);
    assert.equal(network.get(member?.id ?? ''), null, 'its network is gone');
    assert.ok(![...h.driver.running.values()].some((v) => v.spec.id === member?.id), 'its VM is gone');
    await until(() => h.store.list().some((r) => r.pool !== null && r.state === 'running'));
  } finally {
    await h.manager.shutdown({ destroyAll: true });
    await h.close();
  }
});
