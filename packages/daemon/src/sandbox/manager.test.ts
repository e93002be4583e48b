import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../errors.js';
import { fakeHarness } from '../testing/harness.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('create runs every step and ends running; destroy leaves nothing', async () => {
  const h = await fakeHarness();
  try {
    const sb = await h.manager.create({ memoryMiB: 512, labels: { team: 'a' } });
    assert.equal(sb.state, 'running');
    assert.equal(sb.spec.memoryMiB, 512);
    const steps = h.store.events(sb.id).filter((e) => e.type === 'step').map((e) => e.data.step);
    assert.deepEqual(steps, ['resolve-image', 'resolve-template', 'allocate', 'scratch-disk', 'start-vm', 'agent-connect', 'personalize', 'docker-ready']);
    assert.equal((h.agents[0]?.configured[0] as { hostname?: string }).hostname, sb.id, 'the guest is personalized with its own id');
    assert.ok(h.store.events(sb.id).some((e) => e.type === 'cold-boot'), 'a cold boot says why');
    assert.ok(existsSync(join(h.stateDir, 'sandboxes', sb.id, 'scratch.img')));
    assert.equal(h.driver.running.size, 1);
    await h.manager.destroy(sb.id);
    assert.equal(h.store.get(sb.id), null);
    assert.equal(h.driver.running.size, 0);
    assert.deepEqual(readdirSync(join(h.stateDir, 'sandboxes')), []);
    assert.ok(h.agents[0]?.closed);
  } finally {
    await h.close();
  }
});

test('a failure at a late step undoes everything and reports the step', async () => {
  const h = await fakeHarness({ agent: { dockerReadyError: new KilnError('TIMEOUT', 'dockerd did not answer') } });
  try {
    await assert.rejects(h.manager.create({}), (err: unknown) => err instanceof KilnError && /step docker-ready failed: dockerd did not answer/.test(err.message));
    const [rec] = h.store.list();
    assert.equal(rec?.state, 'failed');
    assert.equal(rec?.error?.step, 'docker-ready');
    assert.equal(h.driver.running.size, 0, 'VM killed');
    assert.deepEqual(readdirSync(join(h.stateDir, 'sandboxes')), [], 'run dir removed');
    assert.ok(h.agents[0]?.closed, 'agent channel closed');
  } finally {
    await h.close();
  }
});

test('invalid specs are refused before anything is created', async () => {
  const h = await fakeHarness();
  try {
    await assert.rejects(h.manager.create({ memoryMiB: -5 }), { code: 'INVALID_ARGUMENT', message: /memoryMiB/ });
    await assert.rejects(h.manager.create({ vcpus: 1.5 }), { code: 'INVALID_ARGUMENT', message: /vcpus/ });
    await assert.rejects(h.manager.create({ env: { 'BAD KEY': 'x' } }), { code: 'INVALID_ARGUMENT', message: /env key/ });
    assert.equal(h.store.list().length, 0);
    assert.equal(h.driver.running.size, 0);
  } finally {
    await h.close();
  }
});

test('a VM that dies while running marks the sandbox failed and reclaims its resources', async () => {
  const h = await fakeHarness();
  try {
    const sb = await h.manager.create({});
    const pid = h.store.get(sb.id)?.vm?.pid ?? -1;
    h.driver.crash(pid);
    await sleep(20);
    const rec = h.store.get(sb.id);
    assert.equal(rec?.state, 'failed');
    assert.equal(rec?.error?.code, 'VM_EXITED');
    assert.match(rec?.error?.message ?? '', /SIGKILL/);
    assert.ok(!existsSync(join(h.stateDir, 'sandboxes', sb.id)));
    await h.manager.destroy(sb.id);
    assert.equal(h.store.get(sb.id), null);
  } finally {
    await h.close();
  }
});

test('destroy during creation cancels it and leaves nothing; double destroy is one destruction', async () => {
  const h = await fakeHarness();
  try {
    const sb = await h.manager.create({}, { wait: false });
    const d1 = h.manager.destroy(sb.id);
    const d2 = h.manager.destroy(sb.id);
    await Promise.all([d1, d2]);
    assert.equal(h.store.get(sb.id), null);
    assert.equal(h.driver.running.size, 0);
    assert.deepEqual(readdirSync(join(h.stateDir, 'sandboxes')), []);
    await assert.rejects(h.manager.destroy(sb.id), { code: 'SANDBOX_NOT_FOUND' });
  } finally {
    await h.close();
  }
});

test('restart: a live running VM is adopted, a dead one marked failed, orphans removed', async () => {
  const h = await fakeHarness();
  try {
    const alive = await h.manager.create({});
    const dead = await h.manager.create({});
    await h.manager.shutdown();
    h.driver.crash(h.store.get(dead.id)?.vm?.pid ?? -1);
    mkdirSync(join(h.stateDir, 'sandboxes', 'sb-ffffffffffff'));
    const m2 = h.mkManager();
    await m2.init();
    assert.equal(m2.get(alive.id).state, 'running');
    assert.ok(m2.agentFor(alive.id, 'exec'));
    assert.equal(m2.get(dead.id).state, 'failed');
    assert.ok(!existsSync(join(h.stateDir, 'sandboxes', dead.id)));
    assert.ok(!existsSync(join(h.stateDir, 'sandboxes', 'sb-ffffffffffff')));
    await m2.destroy(alive.id);
    await m2.destroy(dead.id);
    await m2.shutdown();
  } finally {
    await h.close();
  }
});
