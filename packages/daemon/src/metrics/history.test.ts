import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SampleHistory } from './history.js';
import type { SandboxSample } from './sampler.js';

const sample = (id: string, at: number, cpu: number): SandboxSample => ({
  id,
  state: 'running',
  at,
  vmm: { pid: 1, cpuSeconds: 0, cpuPercent: cpu, rssBytes: 100 },
  guest: { at, memTotalBytes: 1000, memUsedBytes: 500, load1: 0, load5: 0, load15: 0, uptimeMs: 1 },
  disk: null,
  net: { rxBytes: at, txBytes: 2 * at },
});

test('history keeps each sandbox’s points of the last window, oldest first, and pages by `after`', () => {
  const h = new SampleHistory(10_000);
  for (let t = 0; t <= 20_000; t += 2000) h.add(sample('a', t, t / 1000));
  h.add(sample('b', 20_000, 7));
  const a = h.get('a');
  assert.deepEqual(a.map((p) => p.at), [10_000, 12_000, 14_000, 16_000, 18_000, 20_000], 'older than the window are dropped');
  assert.deepEqual(a[0], { at: 10_000, cpuPercent: 10, rssBytes: 100, memUsedBytes: 500, memTotalBytes: 1000, rxBytes: 10_000, txBytes: 20_000 });
  assert.deepEqual(h.get('a', 16_000).map((p) => p.at), [18_000, 20_000]);
  assert.equal(h.get('b')[0]?.cpuPercent, 7);
  h.forget('a');
  assert.deepEqual(h.get('a'), []);
  assert.deepEqual(h.ids(), ['b']);
});
