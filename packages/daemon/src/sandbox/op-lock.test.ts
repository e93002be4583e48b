import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OpLock } from './op-lock.js';

/** A promise and its resolver: an operation the test ends when it wants. */
function gate(): { done: Promise<void>; open: () => void } {
  let open!: () => void;
  const done = new Promise<void>((r) => (open = r));
  return { done, open };
}
const tick = () => new Promise((r) => setImmediate(r));

test('shared holders run side by side', async () => {
  const lock = new OpLock();
  const g = gate();
  let running = 0;
  let most = 0;
  const op = () =>
    lock.runShared(async () => {
      most = Math.max(most, ++running);
      await g.done;
      running--;
    });
  const all = Promise.all([op(), op(), op()]);
  await tick();
  assert.equal(most, 3);
  g.open();
  await all;
  assert.ok(lock.idle);
});

test('an exclusive operation waits for shared holders; shared ones arriving meanwhile wait for it', async () => {
  const lock = new OpLock();
  const order: string[] = [];
  const exec = gate();
  const first = lock.runShared(async () => {
    order.push('exec-1 start');
    await exec.done;
    order.push('exec-1 end');
  });
  const snapshot = gate();
  const snap = lock.runExclusive(async () => {
    order.push('snapshot start');
    await snapshot.done;
    order.push('snapshot end');
  });
  const second = lock.runShared(() => {
    order.push('exec-2');
  });
  await tick();
  assert.deepEqual(order, ['exec-1 start'], 'the snapshot waits for the exec; the second exec waits behind the snapshot');
  exec.open();
  await tick();
  assert.deepEqual(order, ['exec-1 start', 'exec-1 end', 'snapshot start']);
  snapshot.open();
  await Promise.all([first, snap, second]);
  assert.deepEqual(order, ['exec-1 start', 'exec-1 end', 'snapshot start', 'snapshot end', 'exec-2']);
});

test('exclusive operations run one at a time, in the order they came', async () => {
  const lock = new OpLock();
  const order: string[] = [];
  let inside = 0;
  const op = (name: string) =>
    lock.runExclusive(async () => {
      assert.equal(++inside, 1, `${name} overlaps another exclusive operation`);
      order.push(name);
      await tick();
      inside--;
    });
  await Promise.all([op('snapshot'), op('pause'), op('resume'), op('destroy')]);
  assert.deepEqual(order, ['snapshot', 'pause', 'resume', 'destroy']);
});

test('destroy (waitForShared: false) waits for a snapshot in progress but not for shared holders', async () => {
  const lock = new OpLock();
  const order: string[] = [];
  const snapshot = gate();
  const snap = lock.runExclusive(async () => {
    order.push('snapshot start');
    await snapshot.done;
    order.push('snapshot end');
  });
  const destroy1 = lock.runExclusive(() => void order.push('destroy'), { waitForShared: false });
  await tick();
  assert.deepEqual(order, ['snapshot start'], 'destroy waits for the snapshot');
  snapshot.open();
  await Promise.all([snap, destroy1]);
  assert.deepEqual(order, ['snapshot start', 'snapshot end', 'destroy']);

  const upload = gate();
  const up = lock.runShared(async () => {
    await upload.done;
    order.push('upload end');
  });
  await tick();
  await lock.runExclusive(() => void order.push('destroy again'), { waitForShared: false });
  assert.deepEqual(order.slice(3), ['destroy again'], 'it did not wait for the upload');
  upload.open();
  await up;
  assert.ok(lock.idle);
});

test('a failing operation gives the lock back; a release called twice counts once', async () => {
  const lock = new OpLock();
  await assert.rejects(lock.runExclusive(() => Promise.reject(new Error('boom'))), /boom/);
  const r1 = await lock.acquireShared();
  const r2 = await lock.acquireShared();
  r1();
  r1();
  let granted = false;
  const ex = lock.acquireExclusive().then((r) => {
    granted = true;
    return r;
  });
  await tick();
  assert.equal(granted, false, 'one shared holder is still in');
  r2();
  (await ex)();
  assert.ok(granted);
  assert.ok(lock.idle);
});
