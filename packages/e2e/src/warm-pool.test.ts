/**
 * The warm pool under concurrent creates, with real VMs and networking on: many creates fired
 * at once at a pool of two each get a sandbox of their own (distinct ids, distinct guests, each
 * with its caller's egress policy in force), and nothing is left on the host afterwards.
 */
import { after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonFixture, integrationSkipReason } from './harness.js';
import { leftovers, waitFor } from './lifecycle-leftovers.js';

const skip = integrationSkipReason();
const POOL = 2;
const CREATES = 6;

interface Info {
  pool: { size: number; ready: number; filling: number };
}
interface NetView {
  policy: { preset: string; allow: Array<{ cidr?: string; protocol: string; ports: string[] }> };
}

/** Caller i's policy: locked, with one allow rule that names it (documentation addresses, never reached). */
const policyOf = (i: number) => ({ preset: 'locked', allow: [{ cidr: `198.51.100.${i + 1}/32`, protocol: 'tcp', ports: [443 + i] }] });

describe('warm pool: concurrent creates', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('pool');
  after(async () => fx.close());

  fx.test(`${CREATES} concurrent creates at a pool of ${POOL}: ${CREATES} sandboxes, ${CREATES} guests, each with its caller's policy`, async () => {
    await fx.start({ KILN_POOL_SIZE: String(POOL) });
    await waitFor('the pool to fill', async () => (await fx.client.call<Info>('GET', '/v1/info')).pool.ready === POOL, 300_000, 500);
    const pooled = new Set(readdirSync(join(fx.stateDir, 'sandboxes')));
    assert.equal(pooled.size, POOL);

    const made = await Promise.all(Array.from({ length: CREATES }, (_, i) => fx.client.create({ network: policyOf(i) })));
    const ids = made.map((s) => s.id);
    process.stderr.write(`# ${CREATES} concurrent creates: ${ids.join(' ')} (pool members: ${[...pooled].join(' ')})\n`);
    assert.equal(new Set(ids).size, CREATES, `distinct ids: ${ids.join(' ')}`);
    for (const s of made) assert.equal(s.state, 'running', `${s.id}: ${JSON.stringify(s.error)}`);
    const claimed = ids.filter((id) => pooled.has(id));
    assert.equal(claimed.length, POOL, `each member handed out once: ${claimed.join(' ')}`);
    for (const id of claimed) assert.ok((await fx.client.events(id)).some((e) => e.type === 'claimed'), `${id} says it was claimed`);

    // Distinct guests: each answers with its own hostname (its id) and its own machine id.
    const guests = await Promise.all(ids.map(async (id) => (await fx.sh(id, 'hostname; cat /etc/machine-id')).out.trim().split('\n')));
    guests.forEach(([hostname], i) => assert.equal(hostname, ids[i], `${ids[i]} is its own guest`));
    const machineIds = guests.map((g) => g[1]);
    assert.equal(new Set(machineIds).size, CREATES, `distinct machine ids: ${machineIds.join(' ')}`);

    // Each caller's policy is the one in force in its own sandbox.
    for (const [i, id] of ids.entries()) {
      const net = await fx.client.call<NetView>('GET', `/v1/sandboxes/${id}/network`);
      assert.equal(net.policy.preset, 'locked', `${id}: ${JSON.stringify(net.policy)}`);
      assert.deepEqual(
        net.policy.allow.map((r) => [r.cidr, r.protocol, r.ports]),
        [[`198.51.100.${i + 1}/32`, 'tcp', [String(443 + i)]]],
        `${id} runs its own caller's policy`,
      );
    }

    await Promise.all(ids.map((id) => fx.client.destroy(id)));
    for (const id of ids) assert.deepEqual(leftovers(fx.stateDir, id), [], `${id} left nothing`);
    // The refilled members are destroyed when kilnd stops: then nothing of any sandbox is left.
    await waitFor('the pool to refill', async () => (await fx.client.call<Info>('GET', '/v1/info')).pool.ready === POOL, 300_000, 500);
    const members = readdirSync(join(fx.stateDir, 'sandboxes'));
    await fx.stop();
    assert.deepEqual(fx.vmmProcesses(), [], 'no VMM outlives kilnd\'s pool');
    for (const id of members) assert.deepEqual(leftovers(fx.stateDir, id), [], `pool member ${id} left nothing`);
    assert.ok(!existsSync(join(fx.stateDir, 'sandboxes')) || readdirSync(join(fx.stateDir, 'sandboxes')).length === 0);
  });
});
