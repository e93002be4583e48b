import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProtocolError } from './errors.js';
import { StreamReceiver, StreamSender } from './flow.js';
import { MAX_BODY_BYTES } from './frame.js';

test('a sender keeps at most its window in flight and resumes on acks', () => {
  const sent: number[] = [];
  let ended = 0;
  const s = new StreamSender((b) => sent.push(b.length), () => ended++, 100_000);
  assert.equal(s.write(Buffer.alloc(60_000)), true);
  assert.equal(s.write(Buffer.alloc(60_000)), false);
  assert.deepEqual(sent, [60_000, 40_000]);
  assert.equal(s.queued, 20_000);
  s.end();
  assert.equal(ended, 0, 'end waits for the queue');
  let drained = false;
  s.once('drain', () => (drained = true));
  s.ack(30_000);
  assert.deepEqual(sent, [60_000, 40_000, 20_000]);
  assert.equal(drained, true);
  assert.equal(ended, 1);
});

test('a sender splits chunks to MAX_BODY_BYTES', () => {
  const sent: number[] = [];
  const s = new StreamSender((b) => sent.push(b.length), () => undefined, 4 * 1024 * 1024);
  s.write(Buffer.alloc(MAX_BODY_BYTES * 2 + 5));
  assert.deepEqual(sent, [MAX_BODY_BYTES, MAX_BODY_BYTES, 5]);
});

test('over-acking and overrunning a window are protocol errors', () => {
  const s = new StreamSender(() => undefined, () => undefined, 1000);
  s.write(Buffer.alloc(10));
  assert.throws(() => s.ack(11), ProtocolError);
  const r = new StreamReceiver(() => undefined, 1000);
  r.received(600);
  r.consumed(600);
  r.received(1000);
  assert.throws(() => r.received(1), ProtocolError);
});
