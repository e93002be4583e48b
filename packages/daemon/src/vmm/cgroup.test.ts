// A VM's cgroup limits, over a stand-in cgroup tree in a temporary directory (v1 and v2 layouts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createVmCgroup, detectCgroups, setVmCpuDemoted, VMS_CPU_SHARES, VMS_CPU_WEIGHT } from './cgroup.js';

const read = (root: string, f: string) => readFileSync(join(root, f), 'utf8');

test('cgroups: v1 hierarchies get memory, CFS quota and pids limits; v2 gets memory.max/cpu.max/pids.max', () => {
  const root = mkdtempSync(join(tmpdir(), 'kiln-cg-'));
  try {
    for (const c of ['memory', 'cpu', 'pids']) {
      mkdirSync(join(root, c));
      writeFileSync(join(root, c, 'cgroup.procs'), '');
    }
    // An older kiln left a shared quota on the parent: it is lifted (a child above it is EINVAL).
    mkdirSync(join(root, 'cpu/kiln'));
    writeFileSync(join(root, 'cpu/kiln/cpu.cfs_quota_us'), '150000');
    const v1 = detectCgroups(root);
    assert.equal(v1.kind, 'v1');
    const procs = createVmCgroup(v1, 'sb-1', { memoryBytes: 123, vcpus: 2, pids: 7 });
    assert.deepEqual(procs, ['memory', 'cpu', 'pids'].map((c) => join(root, c, 'kiln/sb-1/cgroup.procs')));
    assert.equal(read(root, 'memory/kiln/sb-1/memory.limit_in_bytes'), '123');
    // 2 vCPUs = 2 cores per period; the parent of all VMs: no quota, half the default weight
    assert.equal(read(root, 'cpu/kiln/sb-1/cpu.cfs_quota_us'), '200000');
    assert.equal(read(root, 'cpu/kiln/sb-1/cpu.cfs_period_us'), '100000');
    assert.equal(read(root, 'cpu/kiln/cpu.cfs_quota_us'), '-1');
    assert.equal(read(root, 'cpu/kiln/cpu.shares'), String(VMS_CPU_SHARES));
    assert.equal(read(root, 'pids/kiln/sb-1/pids.max'), '7');
    setVmCpuDemoted(v1, 'sb-1', true);
    assert.equal(read(root, 'cpu/kiln/sb-1/cpu.shares'), '128');
    setVmCpuDemoted(v1, 'sb-1', false);
    assert.equal(read(root, 'cpu/kiln/sb-1/cpu.shares'), '1024');

    writeFileSync(join(root, 'cgroup.controllers'), 'memory cpu pids');
    const v2 = detectCgroups(root);
    assert.equal(v2.kind, 'v2');
    createVmCgroup(v2, 'sb-2', { memoryBytes: 456, vcpus: 1, pids: 9 });
    assert.equal(read(root, 'kiln/sb-2/memory.max'), '456');
    assert.equal(read(root, 'kiln/sb-2/memory.swap.max'), '0');
    assert.equal(read(root, 'kiln/sb-2/cpu.max'), '100000 100000');
    assert.equal(read(root, 'kiln/cpu.max'), 'max 100000');
    assert.equal(read(root, 'kiln/cpu.weight'), String(VMS_CPU_WEIGHT));
    assert.equal(read(root, 'kiln/sb-2/pids.max'), '9');
    setVmCpuDemoted(v2, 'sb-2', true);
    assert.equal(read(root, 'kiln/sb-2/cpu.weight'), '12');
    setVmCpuDemoted(v2, 'sb-2', false);
    assert.equal(read(root, 'kiln/sb-2/cpu.weight'), '100');
    // A VM whose cgroup is gone: an error naming the file, nothing created.
    assert.throws(() => setVmCpuDemoted(v2, 'sb-gone', true), { code: 'CGROUP_FAILED' });
    assert.equal(detectCgroups(join(root, 'nowhere')).kind, 'none');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
