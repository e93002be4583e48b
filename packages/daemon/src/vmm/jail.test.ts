import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jailCommand, plainCommand, type JailPlan } from './jail.js';

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

test('jailCommand: the launcher, with cgroups, rlimits, netns, devices, then the jail; each path an argument of its own', () => {
  const launcher = process.execPath; // any file that exists: the command is only built here
  const { file, args } = jailCommand(plan, ['qemu-system-x86_64', '-name', 'kiln-sb-1'], launcher);
  assert.equal(file, launcher);
  assert.deepEqual(args, [
    '--cgroup-procs', '/sys/fs/cgroup/kiln/sb-1/cgroup.procs',
    '--fsize', '1000', '--nofile', '64',
    '--netns', 'kiln-ns',
    // inside the netns and before the new mount namespace, root opens the TAP for QEMU
    '--tap', 'kt0123456789ab',
    '--root', '/s/sb-1/jail', '--uid', '995', '--gid', '994',
    '--ro', '/img/vmlinuz', '--ro', '/img/rootfs.ext4',
    '--rw', '/s/sb-1',
    '--', 'qemu-system-x86_64', '-name', 'kiln-sb-1',
  ]);
  // without a netns (no network) the launcher stays in kilnd's
  assert.ok(!jailCommand({ ...plan, netns: null }, ['q'], launcher).args.includes('--netns'));
});

test('plainCommand: unjailed, the launcher only enters the netns and opens the devices', () => {
  const launcher = process.execPath;
  assert.deepEqual(plainCommand('kiln-ns', { tap: 'kt0123456789ab', kvm: '/dev/kvm' }, ['qemu-system-x86_64', '-M', 'none'], launcher), {
    file: launcher,
    args: ['--netns', 'kiln-ns', '--tap', 'kt0123456789ab', '--kvm', '/dev/kvm', '--', 'qemu-system-x86_64', '-M', 'none'],
  });
});

test('a launcher that was not built is a named error that says how to build it', () => {
  const missing = '/nonexistent/kiln-vmm-launch';
  assert.throws(() => jailCommand(plan, ['q'], missing), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'VMM_LAUNCHER_MISSING');
    assert.match(err.message, /\/nonexistent\/kiln-vmm-launch is missing: run `npm run build`/);
    return true;
  });
  assert.throws(() => plainCommand('kiln-ns', { tap: null, kvm: null }, ['q'], missing), /VMM launcher .* is missing/);
});

