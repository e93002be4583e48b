// The manager's operations under the per-sandbox lock (op-lock.ts), over fakes: a snapshot, pause,
// guest call and destroy on one sandbox never interleave badly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeHarness } from '../testing/harness.js';

function gate(): { done: Promise<void>; open: () => void } {
  let open!: () => void;
  const done = new Promise<void>((r) => (open = r));
  return { done, open };
}
const settle = () => new Promise((r) => setTimeout(r, 20));

test('destroy waits for a snapshot in progress, then destroys', async () => {
  const h = await fakeHarness();
  try {
    const sb = await h.manager.create({});
    const snapshot = gate();
    const order: string[] = [];
    const snap = h.manager.withSnapshotable(sb.id, async (rec) => {
      order.push(`snapshot of a ${rec.state} VM`);
      await snapshot.done;
      order.push(h.driver.isAlive(rec.vm) ? 'snapshot done, VM alive' : 'snapshot done, VM gone');
      return 'template';
    });
    await settle();
    const destroyed = h.manager.destroy(sb.id).then(() => order.push('destroyed'));
    await settle();
    assert.equal(h.store.get(sb.id)?.state, 'running', 'destroy has not started');
    snapshot.open();
    assert.equal(await snap, 'template');
    await destroyed;
    assert.deepEqual(order, ['snapshot of a running VM', 'snapshot done, VM alive', 'destroyed']);
    assert.equal(h.store.get(sb.id), null);
    assert.equal(h.driver.running.size, 0);
  } finally {
    await h.close();
  }
});

test('a pause during a snapshot waits for it; a guest call during the pause waits and is then refused', async () => {
  const h = await fakeHarness();
  try {
    const sb = await h.manager.create({});
    const calls: string[] = [];
    const pausing = gate();
    h.driver.pause = async () => {
      calls.push('driver.pause');
      await pausing.done;
    };
    const snapshot = gate();
    const snap = h.manager.withSnapshotable(sb.id, async () => {
      calls.push('snapshot');
      await snapshot.done;
      calls.push('snapshot end');
    });
    await settle();
    const paused = h.manager.pause(sb.id);
    await settle();
    assert.deepEqual(calls, ['snapshot'], 'the pause waits for the snapshot');
    snapshot.open();
    await snap;
    await settle();
    assert.deepEqual(calls, ['snapshot', 'snapshot end', 'driver.pause']);
    // The VM is being paused: an exec's start waits, and then finds the sandbox paused.
    const exec = h.manager.useAgent(sb.id, 'exec');
    let execSettled = false;
    exec.then(
      () => (execSettled = true),
      () => (execSettled = true),
    );
    await settle();
    assert.equal(execSettled, false, 'the exec waits for the pause');
    pausing.open();
    assert.equal((await paused).state, 'paused');
    await assert.rejects(exec, { code: 'INVALID_STATE' });
  } finally {
    await h.close();
  }
});

test('a snapshot waits for a file call in progress; a destroy does not (it ends guest calls)', async () => {
  const h = await fakeHarness();
  try {
    const sb = await h.manager.create({});
    const upload = gate();
    const order: string[] = [];
    const up = h.manager.withAgent(sb.id, 'files', async () => {
      await upload.done;
      order.push('upload end');
    });
    await settle();
    const snap = h.manager.withSnapshotable(sb.id, async () => void order.push('snapshot'));
    await settle();
    assert.deepEqual(order, [], 'the snapshot waits for the upload');
    upload.open();
    await Promise.all([up, snap]);
    assert.deepEqual(order, ['upload end', 'snapshot']);

    const stuck = h.manager.useAgent(sb.id, 'files'); // a guest call that never ends by itself
    await stuck;
    await h.manager.destroy(sb.id);
    assert.equal(h.store.get(sb.id), null, 'destroyed with a guest call still holding the sandbox');
    assert.ok(h.agents[0]?.closed, 'the agent the call ran on is closed');
  } finally {
    await h.close();
  }
});
