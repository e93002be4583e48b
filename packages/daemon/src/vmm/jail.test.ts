import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { createVmCgroup, detectCgroups, vmsCpuQuota } from './cgroup.js';
import { jailCommand, type JailPlan } from './jail.js';

const plan: JailPlan = {
  root: '/s/sb-1/jail',
  readOnly: ['/img/vmlinuz', '/img/rootfs.ext4'],
  readWrite: ['/s/sb-1'],
  hostDevices: { tap: 'kt0123456789ab', kvm: null },
  cgroupProcs: ['/sys/fs/cgroup/kiln/sb-1/cgroup.procs'],
  rlimits: { fsizeBytes: 1000, nofile: 64 },
  netns: 'kiln-ns',
  identity: { uid: 995, gid: 994 },
};

test('jailCommand: cgroups, rlimits, netns, namespaces, then the jail script with paths as arguments only', () => {
  const { file, args } = jailCommand(plan, ['qemu-system-x86_64', '-name', 'kiln-sb-1']);
  assert.equal(file, 'bash');
  const rest = args.slice(args.indexOf('/sys/fs/cgroup/kiln/sb-1/cgroup.procs'));
  assert.deepEqual(rest.slice(0, 5), ['/sys/fs/cgroup/kiln/sb-1/cgroup.procs', '--', 'prlimit', '--fsize=1000', '--nofile=64']);
  const i = rest.indexOf('ip');
  assert.deepEqual(rest.slice(i, i + 4), ['ip', 'netns', 'exec', 'kiln-ns']);
  // inside the netns and before the new mount namespace, root opens the TAP for QEMU
  assert.equal(rest[i + 4], 'perl');
  assert.deepEqual(rest.slice(i + 7, i + 10), ['--', 'kt0123456789ab', '']);
  assert.equal(rest[i + 10], 'unshare');
  assert.ok(rest.includes('--pid') && rest.includes('--mount'));
  const tail = rest.slice(rest.indexOf('kiln-jail') + 1);
  assert.deepEqual(tail, ['/s/sb-1/jail', '995', '994', 'ro', '/img/vmlinuz', '/img/rootfs.ext4', 'rw', '/s/sb-1', '--', 'qemu-system-x86_64', '-name', 'kiln-sb-1']);
  // no device node goes into the jail, and QEMU gets no supplementary group (no kvm group)
  const script = args.find((x) => x.includes('pivot_root')) ?? '';
  assert.doesNotMatch(script, /mknod|net\/tun|\/dev\/kvm/);
  assert.match(script, /setpriv .*--clear-groups/);
  // the scripts never contain a path
  for (const a of args.filter((x) => x.includes('\n'))) assert.doesNotMatch(a, /\/img\/|sb-1/);
});

test('cgroups: v1 hierarchies get memory, CFS quota and pids limits; v2 gets memory.max/cpu.max/pids.max', () => {
  const root = mkdtempSync(join(tmpdir(), 'kiln-cg-'));
  try {
    for (const c of ['memory', 'cpu', 'pids']) {
      mkdirSync(join(root, c));
      writeFileSync(join(root, c, 'cgroup.procs'), '');
    }
    const v1 = detectCgroups(root);
    assert.equal(v1.kind, 'v1');
    const procs = createVmCgroup(v1, 'sb-1', { memoryBytes: 123, vcpus: 2, pids: 7 });
    assert.equal(procs.length, 3);
    assert.equal(readFileSync(join(root, 'memory/kiln/sb-1/memory.limit_in_bytes'), 'utf8'), '123');
    // 2 vCPUs, capped by the quota of all VMs (host cores − ½), which the parent gets
    assert.equal(readFileSync(join(root, 'cpu/kiln/sb-1/cpu.cfs_quota_us'), 'utf8'), String(Math.min(200000, vmsCpuQuota())));
    assert.equal(readFileSync(join(root, 'cpu/kiln/cpu.cfs_quota_us'), 'utf8'), String(vmsCpuQuota()));
    assert.equal(readFileSync(join(root, 'pids/kiln/sb-1/pids.max'), 'utf8'), '7');
    writeFileSync(join(root, 'cgroup.controllers'), 'memory cpu pids');
    const v2 = detectCgroups(root);
    assert.equal(v2.kind, 'v2');
    createVmCgroup(v2, 'sb-2', { memoryBytes: 456, vcpus: 1, pids: 9 });
    assert.equal(readFileSync(join(root, 'kiln/sb-2/memory.max'), 'utf8'), '456');
    assert.equal(readFileSync(join(root, 'kiln/sb-2/cpu.max'), 'utf8'), `${Math.min(100000, vmsCpuQuota())} 100000`);
    assert.equal(readFileSync(join(root, 'kiln/cpu.max'), 'utf8'), `${vmsCpuQuota()} 100000`);
    assert.equal(readFileSync(join(root, 'kiln/sb-2/pids.max'), 'utf8'), '9');
    assert.equal(detectCgroups(join(root, 'nowhere')).kind, 'none');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
