import { test } from 'node:test';
import assert from 'node:assert/strict';
import { effectiveExpiresAt, usageOf } from './usage.js';
import type { SandboxRecord } from './types.js';

const base: SandboxRecord = {
  id: 'sb-1',
  state: 'running',
  spec: { memoryMiB: 1024, vcpus: 2, diskGiB: 10, timeoutMs: 0, env: {}, labels: {}, template: null },
  imageHash: null,
  step: null,
  vm: null,
  error: null,
  createdAt: 1000,
  updatedAt: 1000,
  readyAt: 2000,
  expiresAt: null,
  pool: null,
};

test('usage: running and paused seconds from ready, with ended pauses and the one in progress', () => {
  assert.deepEqual(usageOf({ ...base, readyAt: null }, 9000), { runningSeconds: 0, pausedSeconds: 0 });
  assert.deepEqual(usageOf(base, 12_000), { runningSeconds: 10, pausedSeconds: 0 });
  assert.deepEqual(usageOf({ ...base, pausedMs: 3000 }, 12_000), { runningSeconds: 7, pausedSeconds: 3 });
  assert.deepEqual(usageOf({ ...base, state: 'paused', pausedMs: 3000, pausedAt: 10_000, pausedBy: 'auto' }, 12_000), { runningSeconds: 5, pausedSeconds: 5 });
  // Ended: counted up to the last state change, not now.
  assert.deepEqual(usageOf({ ...base, state: 'destroyed', updatedAt: 6000, pausedMs: 1000 }, 99_000), { runningSeconds: 3, pausedSeconds: 1 });
  // A claimed warm-pool member counts from its claim (createdAt), not from when the pool made it.
  assert.deepEqual(usageOf({ ...base, createdAt: 5000, readyAt: 2000 }, 7000), { runningSeconds: 2, pausedSeconds: 0 });
});

test('usage: the deadline stands still while auto-paused, and runs while the user paused it', () => {
  assert.equal(effectiveExpiresAt({ ...base, expiresAt: 50_000 }, 20_000), 50_000);
  assert.equal(effectiveExpiresAt({ ...base, state: 'paused', pausedBy: 'auto', pausedAt: 10_000, expiresAt: 50_000 }, 20_000), 60_000);
  assert.equal(effectiveExpiresAt({ ...base, state: 'paused', pausedBy: 'user', pausedAt: 10_000, expiresAt: 50_000 }, 20_000), 50_000);
  assert.equal(effectiveExpiresAt({ ...base, expiresAt: null }), null);
});
