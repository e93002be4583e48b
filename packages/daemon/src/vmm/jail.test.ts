import { test } from 'node:test';
import assert from 'node:assert/strict';
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

