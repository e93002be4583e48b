import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import { OutputRing } from './ops/output-ring.js';
import { ProcessTable, type Proc } from './ops/process-table.js';

const fake = (pid: number, bytes = 0): Proc => {
  const ring = new OutputRing(1024);
  if (bytes) ring.append('stdout', Buffer.alloc(bytes, 'x'));
  return { pid, tag: null, argv: ['x'], cwd: '/', user: 'root', pty: false, child: {} as ChildProcess, ring, events: new EventEmitter(), stdin: null, control: null, exited: false, exitCode: null, signal: null, timedOut: false, startedAt: pid, endedAt: null };
};

test('exited processes are kept up to maxExited (oldest forgotten first) and their output within the budget', () => {
  const table = new ProcessTable({ ringBytes: 1024, maxRunning: 3, maxExited: 2, retentionMs: 60_000, exitedBufferBytes: 150 });
  const procs = [1, 2, 3].map((pid) => fake(pid, 100));
  for (const p of procs) table.add(p);
  assert.throws(() => table.checkRoom(), (e: Error & { code?: string }) => e.code === 'RESOURCE_EXHAUSTED');
  for (const p of procs) table.exited(p, 0, null);
  table.checkRoom();
  assert.deepEqual(table.list().map((p) => p.pid), [2, 3], 'the oldest exit is forgotten');
  // The newest exit keeps its output; the next one would pass the 150-byte budget and is released.
  assert.equal(table.get(3).ring.end - table.get(3).ring.start, 100);
  assert.equal(table.get(2).ring.end - table.get(2).ring.start, 0);
  assert.equal(table.get(2).ring.start, 100, 'its offsets stay: a reader sees the bytes as dropped');
  assert.throws(() => table.get(1), (e: Error & { code?: string }) => e.code === 'NOT_FOUND');
});

test('exited processes are forgotten after the retention time; running ones never are', () => {
  const table = new ProcessTable({ ringBytes: 1024, maxRunning: 10, maxExited: 10, retentionMs: 0, exitedBufferBytes: 1 << 20 });
  const running = fake(1);
  const done = fake(2);
  table.add(running);
  table.add(done);
  done.endedAt = 0;
  table.exited(done, 0, null);
  done.endedAt = Date.now() - 1; // retention 0: gone at the next look
  assert.deepEqual(table.list().map((p) => p.pid), [1]);
});
