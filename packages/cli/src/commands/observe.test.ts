import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeRecord, sinceParam } from './audit.js';
import { formatLogLine } from './logs.js';
import { bytes, statsTable } from './stats.js';

test('kiln logs: service column, or text only with --service, time with --timestamps', () => {
  const line = '2026-11-27T11:23:46.332Z dockerd level=info msg="API listen"';
  assert.equal(formatLogLine(line, {}), 'dockerd level=info msg="API listen"');
  assert.equal(formatLogLine(line, { service: 'dockerd' }), 'level=info msg="API listen"');
  assert.equal(formatLogLine(line, { timestamps: true, service: 'dockerd' }), '2026-11-27T11:23:46.332Z level=info msg="API listen"');
});

test('kiln audit: --since takes a duration back or an ISO time; records read as one line each', () => {
  const t = Date.parse(sinceParam('10m'));
  assert.ok(Math.abs(Date.now() - 600_000 - t) < 5000);
  assert.equal(sinceParam('2026-01-02T03:04:05Z'), '2026-01-02T03:04:05.000Z');
  assert.throws(() => sinceParam('yesterday'), /--since/);
  const s = describeRecord({ seq: 7, time: 'T', type: 'exec', sandboxId: 'sb-000000000001', actor: { kind: 'unix', uid: 1000, pid: 42 }, data: { argv: ['ls', '-l'], cwd: '/tmp', exitCode: 0, signal: null, durationMs: 5, stdoutBytes: 10, stderrBytes: 0 } });
  assert.match(s, /^\s+7\s+T\s+exec\s+sb-000000000001\s+uid=1000 pid=42\s+\["ls","-l"\] in \/tmp → exit 0 \(5 ms, out 10 B, err 0 B\)$/);
});

test('kiln stats: a docker-stats-like table', () => {
  assert.equal(bytes(652292096), '622MiB');
  assert.equal(bytes(1536), '1.5KiB');
  const t = statsTable([{ id: 'sb-000000000001', state: 'running', at: 0, vmm: { pid: 1, cpuSeconds: 22.83, cpuPercent: 20.98, rssBytes: 652292096 }, guest: { memTotalBytes: 1020428288, memUsedBytes: 272523264, load1: 0.68 }, disk: { allocatedBytes: 6135808, sizeBytes: 1 }, net: null }]);
  const [head, row] = t.trim().split('\n');
  assert.match(head ?? '', /^SANDBOX\s+STATE\s+CPU %\s+CPU TIME\s+VMM MEM\s+GUEST MEM \/ TOTAL\s+LOAD\s+DISK\s+NET RX \/ TX$/);
  assert.match(row ?? '', /^sb-000000000001\s+running\s+21\.0%\s+22\.8s\s+622MiB\s+260MiB \/ 973MiB\s+0\.68\s+5\.9MiB\s+-$/);
});
