import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OutputRing } from './ops/output-ring.js';

const read = (r: OutputRing, offset: number, max = 1 << 20, chunks = 256) => {
  const got = r.read(offset, max, chunks);
  return { ...got, chunks: got.chunks.map((c) => ({ type: c.type, offset: c.offset, data: c.data.toString() })) };
};

test('reads from any offset, merging adjacent chunks of one type, keeping stdout and stderr apart', () => {
  const r = new OutputRing(100);
  r.append('stdout', Buffer.from('ab'));
  r.append('stdout', Buffer.from('cd'));
  r.append('stderr', Buffer.from('E'));
  r.append('stdout', Buffer.from('f'));
  assert.equal(r.end, 6);
  assert.deepEqual(read(r, 0).chunks, [
    { type: 'stdout', offset: 0, data: 'abcd' },
    { type: 'stderr', offset: 4, data: 'E' },
    { type: 'stdout', offset: 5, data: 'f' },
  ]);
  assert.deepEqual(read(r, 3).chunks[0], { type: 'stdout', offset: 3, data: 'd' });
  assert.deepEqual(read(r, 6), { chunks: [], dropped: 0, nextOffset: 6 });
  // Caps: bytes, then chunks.
  assert.deepEqual(read(r, 0, 3).chunks, [{ type: 'stdout', offset: 0, data: 'abc' }]);
  assert.equal(read(r, 0, 100, 2).nextOffset, 5);
});

test('past its capacity the ring overwrites the oldest bytes and a reader is told how many it missed', () => {
  const r = new OutputRing(10);
  for (let i = 0; i < 5; i++) r.append(i % 2 ? 'stderr' : 'stdout', Buffer.from(`${i}${i}${i}${i}`));
  assert.equal(r.end, 20);
  assert.equal(r.start, 10);
  const got = read(r, 0);
  assert.equal(got.dropped, 10);
  assert.deepEqual(got.chunks, [
    { type: 'stdout', offset: 10, data: '22' },
    { type: 'stderr', offset: 12, data: '3333' },
    { type: 'stdout', offset: 16, data: '4444' },
  ]);
  assert.equal(got.nextOffset, 20);
  // A reader inside the kept range misses nothing.
  assert.equal(read(r, 12).dropped, 0);
});

test('many small writes stay few chunks, and the held bytes never exceed the capacity', () => {
  const r = new OutputRing(64 * 1024);
  for (let i = 0; i < 200_000; i++) r.append('pty', Buffer.from('x'));
  assert.equal(r.end - r.start, 64 * 1024);
  const got = r.read(0, 1 << 20, 1024);
  assert.equal(got.dropped, 200_000 - 64 * 1024);
  assert.equal(got.chunks.length, 1);
  assert.equal(got.chunks[0]?.data.length, 64 * 1024);
});

test('release forgets the bytes but keeps the offsets', () => {
  const r = new OutputRing(100);
  r.append('stdout', Buffer.from('hello'));
  r.release();
  assert.deepEqual(read(r, 0), { chunks: [], dropped: 5, nextOffset: 5 });
  r.append('stdout', Buffer.from('!'));
  assert.deepEqual(read(r, 5).chunks, [{ type: 'stdout', offset: 5, data: '!' }]);
});
