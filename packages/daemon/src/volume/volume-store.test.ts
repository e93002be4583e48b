import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { KilnError } from '../errors.js';
import { VolumeStore } from './volume-store.js';

const GiB = 1024 ** 3;

function fixture() {
  const states = new Map<string, string>();
  const s = new VolumeStore(new Database(':memory:'), (id) => states.get(id) ?? null);
  s.add({ tenant: 't1', name: 'data', sizeBytes: GiB, createdAt: 0 }, 10 * GiB);
  return { s, states };
}

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    return (err as KilnError).code;
  }
  return 'none';
};

test('one writer: a second read-write attach is refused naming the holder', () => {
  const { s, states } = fixture();
  states.set('sb-a', 'running');
  s.attach('sb-a', [{ tenant: 't1', name: 'data', readOnly: false, path: '/data' }]);
  try {
    s.attach('sb-b', [{ tenant: 't1', name: 'data', readOnly: false, path: '/data' }]);
    assert.fail('second writer allowed');
  } catch (err) {
    assert.equal((err as KilnError).code, 'VOLUME_BUSY');
    assert.match((err as KilnError).message, /sb-a/);
  }
  assert.equal(code(() => s.attach('sb-b', [{ tenant: 't1', name: 'data', readOnly: true, path: '/data' }])), 'VOLUME_BUSY', 'no reader beside a writer');
});

test('readers share; a writer beside readers is refused; removal waits for every holder', () => {
  const { s, states } = fixture();
  for (const id of ['sb-r1', 'sb-r2']) {
    states.set(id, 'running');
    s.attach(id, [{ tenant: 't1', name: 'data', readOnly: true, path: '/data' }]);
  }
  assert.equal(s.holders('t1', 'data').length, 2);
  assert.equal(code(() => s.attach('sb-w', [{ tenant: 't1', name: 'data', readOnly: false, path: '/d' }])), 'VOLUME_BUSY');
  assert.equal(code(() => s.remove('t1', 'data')), 'VOLUME_IN_USE');
  s.detachAll('sb-r1');
  assert.equal(code(() => s.remove('t1', 'data')), 'VOLUME_IN_USE');
  s.detachAll('sb-r2');
  s.remove('t1', 'data');
  assert.equal(s.get('t1', 'data'), null);
});

test('a sandbox that is no longer live holds nothing (crash recovery needs no sweep)', () => {
  const { s, states } = fixture();
  states.set('sb-a', 'running');
  s.attach('sb-a', [{ tenant: 't1', name: 'data', readOnly: false, path: '/data' }]);
  states.set('sb-a', 'failed'); // its VM died while kilnd was down; reconcile failed it
  states.set('sb-b', 'creating');
  s.attach('sb-b', [{ tenant: 't1', name: 'data', readOnly: false, path: '/data' }]);
  assert.deepEqual(s.holders('t1', 'data').map((h) => h.sandboxId), ['sb-b']);
  states.delete('sb-b'); // row gone
  assert.deepEqual(s.holders('t1', 'data'), []);
});

test('an attach is all or nothing; names are per tenant; the quota counts a tenant’s volumes', () => {
  const { s, states } = fixture();
  states.set('sb-a', 'running');
  assert.equal(code(() => s.attach('sb-a', [{ tenant: 't1', name: 'data', readOnly: false, path: '/a' }, { tenant: 't1', name: 'nope', readOnly: false, path: '/b' }])), 'VOLUME_NOT_FOUND');
  assert.deepEqual(s.of('sb-a'), [], 'the first volume was not kept');
  assert.equal(code(() => s.attach('sb-a', [{ tenant: 't2', name: 'data', readOnly: false, path: '/a' }])), 'VOLUME_NOT_FOUND', "another tenant's volume is not found");
  assert.equal(code(() => s.add({ tenant: 't1', name: 'data', sizeBytes: GiB, createdAt: 0 }, 10 * GiB)), 'VOLUME_EXISTS');
  s.add({ tenant: 't2', name: 'data', sizeBytes: GiB, createdAt: 0 }, 10 * GiB);
  assert.equal(code(() => s.add({ tenant: 't1', name: 'big', sizeBytes: 9 * GiB + 1, createdAt: 0 }, 10 * GiB)), 'VOLUME_QUOTA');
  s.add({ tenant: 't1', name: 'big', sizeBytes: 9 * GiB, createdAt: 0 }, 10 * GiB);
  assert.equal(s.usedBytes('t1'), 10 * GiB);
});
