import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { readCmdline, sleep } from '../util/proc.js';
import type { VmSpec } from './driver.js';
import { hostDevicesFor, hostFdsCommand, KVM_FD, kvmAccelArgs, TAP_FD, tapNetdevArgs } from './host-fds.js';
import { buildQemuArgs, layoutFingerprint } from './qemu.js';

const spec: VmSpec = {
  id: 'sb-0123456789ab',
  runDir: '/state/sandboxes/sb-0123456789ab',
  memoryMiB: 512,
  vcpus: 2,
  kernel: '/img/vmlinuz',
  initrd: '/img/initrd',
  rootfs: '/img/rootfs.ext4',
  scratch: '/state/sandboxes/sb-0123456789ab/scratch.img',
  cmdline: 'quiet',
};
const net = { netns: 'kiln-0123456789ab', tap: 'kt0123456789ab', mac: '02:6b:01:02:03:04' };

test('host devices: the TAP with a network, /dev/kvm only under KVM; nothing to open → no helper', () => {
  assert.deepEqual(hostDevicesFor(spec, 'tcg'), { tap: null, kvm: null });
  assert.deepEqual(hostDevicesFor({ ...spec, net }, 'kvm'), { tap: 'kt0123456789ab', kvm: '/dev/kvm' });
  assert.deepEqual(hostFdsCommand({ tap: null, kvm: null }), []);
  const cmd = hostFdsCommand({ tap: 'kt0123456789ab', kvm: null });
  assert.deepEqual([cmd[0], cmd[1], ...cmd.slice(3)], ['perl', '-e', '--', 'kt0123456789ab', '']);
  assert.doesNotMatch(cmd[2] ?? '', /kt0123456789ab/, 'the TAP name is an argument, never part of the script');
});

test('QEMU takes the TAP as fd 3 and /dev/kvm through an fd set; neither is opened by path', () => {
  const tcg = buildQemuArgs({ ...spec, net }, 'tcg', { tcgTbSizeMiB: 128, tscKhz: null });
  assert.deepEqual(tcg.slice(tcg.indexOf('-netdev'), tcg.indexOf('-netdev') + 2), ['-netdev', `tap,id=net0,fd=${TAP_FD}`]);
  assert.deepEqual(tapNetdevArgs(), ['-netdev', 'tap,id=net0,fd=3']);
  assert.ok(!tcg.join(' ').includes('ifname='), 'QEMU does not open the TAP by name');
  assert.ok(!tcg.includes('-add-fd'), 'no KVM fd under TCG');
  const kvm = buildQemuArgs({ ...spec, net }, 'kvm', { tcgTbSizeMiB: 128, tscKhz: null });
  assert.deepEqual(kvmAccelArgs(), ['-add-fd', `fd=${KVM_FD},set=1,opaque=kvm`, '-accel', 'kvm,device=/dev/fdset/1']);
  const i = kvm.indexOf('-add-fd');
  assert.deepEqual(kvm.slice(i, i + 6), [...kvmAccelArgs(), '-cpu', 'host']);
  assert.ok(!kvm.join(' ').includes('/dev/kvm'), 'QEMU never names /dev/kvm');
});

test('the template key does not depend on the device fds: a template (no TAP) and a clone (TAP fd) have one device set', () => {
  // fd numbers are constants and the canonical VM of layoutFingerprint has no NIC backend
  assert.match(layoutFingerprint('kvm', 128), /^[0-9a-f]{8}$/);
  const devices = (a: string[]) => a.filter((_, i) => a[i - 1] === '-device');
  const noNet = buildQemuArgs(spec, 'kvm', { tcgTbSizeMiB: 128, tscKhz: null });
  const withNet = buildQemuArgs({ ...spec, net }, 'kvm', { tcgTbSizeMiB: 128, tscKhz: null });
  assert.deepEqual(devices(noNet).map((d) => d.replace(/,mac=[^,]+|,netdev=net0/g, '')), devices(withNet).map((d) => d.replace(/,mac=[^,]+|,netdev=net0/g, '')));
});

/**
 * Runs the helper with `kvm` = a plain file (no root needed) and `extra` fds occupying 3 and 4
 * (like the launcher, it first closes whatever else this process inherited), execs `sleep`, and
 * reads the fds the exec'd program holds: fd number → target.
 */
async function runHelper(kvmPath: string, extra: number[]): Promise<Map<string, string>> {
  const keep = 2 + extra.length;
  const closeRest = `for p in /proc/$$/fd/*; do n=\${p##*/}; [ "$n" -gt ${keep} ] && eval "exec $n>&-"; done; exec "$@"`;
  const child = spawn('bash', ['-c', closeRest, 'close-rest', ...hostFdsCommand({ tap: null, kvm: kvmPath }), 'sleep', '30'], { stdio: ['ignore', 'ignore', 'inherit', ...extra] });
  try {
    const pid = child.pid ?? 0;
    for (let i = 0; i < 250 && readCmdline(pid)?.[0] !== 'sleep'; i++) await sleep(20);
    assert.equal(readCmdline(pid)?.[0], 'sleep', 'the helper exec\'d the command');
    return new Map(readdirSync(`/proc/${pid}/fd`).map((n) => [n, readlinkSync(`/proc/${pid}/fd/${n}`)]));
  } finally {
    child.kill('SIGKILL');
  }
}

test('the helper puts the device on its fixed fd, inheritable, and leaks nothing of its own', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-hostfds-'));
  try {
    const dev = join(dir, 'fake-kvm');
    writeFileSync(dev, '');
    // fds 0-2 + the device on 4: open() landed on 3, dup2 moved it, the original closed
    const plain = await runHelper(dev, []);
    assert.equal(plain.get(String(KVM_FD)), dev);
    assert.deepEqual([...plain.keys()].filter((n) => Number(n) > 2), [String(KVM_FD)]);
    // with 3 and 4 already taken, the device still ends up on 4 (replacing what was there)
    const a = openSync(join(dir, 'a'), 'w');
    const b = openSync(join(dir, 'b'), 'w');
    try {
      const busy = await runHelper(dev, [a, b]);
      assert.equal(busy.get(String(KVM_FD)), dev);
      assert.equal(busy.get('3'), join(dir, 'a'));
      assert.deepEqual([...busy.keys()].filter((n) => Number(n) > 4), []);
    } finally {
      closeSync(a);
      closeSync(b);
    }
    // a device that cannot be opened stops the launch with a named error
    const [file, ...args] = hostFdsCommand({ tap: null, kvm: join(dir, 'missing') });
    const r = spawnSync(file ?? 'perl', [...args, 'true'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /kiln-host-fds: open .*missing/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('perl with POSIX and Fcntl is there (perl-base, Essential on Debian)', () => {
  assert.equal(execFileSync('perl', ['-MPOSIX', '-MFcntl', '-e', 'print 1'], { encoding: 'utf8' }), '1');
});
