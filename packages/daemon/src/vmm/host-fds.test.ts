import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { readCmdline, sleep } from '../util/proc.js';
import { settledFds } from '../testing/proc-fds.js';
import type { VmSpec } from './driver.js';
import { hostDevicesFor, hostFdsOptions, KVM_FD, kvmAccelArgs, TAP_FD, tapNetdevArgs } from './host-fds.js';
import { LAUNCHER_PATH, plainCommand } from './jail.js';
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

test('host devices: the TAP with a network, /dev/kvm only under KVM, each a launcher option of its own', () => {
  assert.deepEqual(hostDevicesFor(spec, 'tcg'), { tap: null, kvm: null });
  assert.deepEqual(hostDevicesFor({ ...spec, net }, 'kvm'), { tap: 'kt0123456789ab', kvm: '/dev/kvm' });
  assert.deepEqual(hostFdsOptions({ tap: null, kvm: null }), []);
  assert.deepEqual(hostFdsOptions({ tap: 'kt0123456789ab', kvm: null }), ['--tap', 'kt0123456789ab']);
  assert.deepEqual(hostFdsOptions({ tap: 'kt0123456789ab', kvm: '/dev/kvm' }), ['--tap', 'kt0123456789ab', '--kvm', '/dev/kvm']);
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

const launcherSkip = existsSync(LAUNCHER_PATH) ? false : `${LAUNCHER_PATH} not built (npm run build)`;

/**
 * Runs the unjailed launcher with `kvm` = a plain file (no root needed) and `extra` fds of this
 * process inherited as 3, 4…, execs `sleep`, and reads the fds the exec'd program holds: fd
 * number → target.
 */
async function runLauncher(kvmPath: string, extra: number[]): Promise<Map<string, string>> {
  const { file, args } = plainCommand(null, { tap: null, kvm: kvmPath }, ['sleep', '30']);
  const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'inherit', ...extra] });
  try {
    const pid = child.pid ?? 0;
    for (let i = 0; i < 250 && readCmdline(pid)?.[0] !== 'sleep'; i++) await sleep(20);
    assert.equal(readCmdline(pid)?.[0], 'sleep', 'the launcher exec\'d the command in place');
    return await settledFds(pid);
  } finally {
    child.kill('SIGKILL');
  }
}

test('the launcher puts the device on its fixed fd, inheritable, and passes on nothing else', { skip: launcherSkip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-hostfds-'));
  try {
    const dev = join(dir, 'fake-kvm');
    writeFileSync(dev, '');
    // fds 0-2 + the device on 4: open() landed on 3, dup2 moved it, the original closed
    const plain = await runLauncher(dev, []);
    assert.equal(plain.get(String(KVM_FD)), dev);
    assert.deepEqual([...plain.keys()].filter((n) => Number(n) > 2), [String(KVM_FD)]);
    // fds inherited on 3 and 4 are closed first: only the device is left, on 4
    const a = openSync(join(dir, 'a'), 'w');
    const b = openSync(join(dir, 'b'), 'w');
    try {
      const busy = await runLauncher(dev, [a, b]);
      assert.equal(busy.get(String(KVM_FD)), dev);
      assert.deepEqual([...busy.keys()].filter((n) => Number(n) > 2), [String(KVM_FD)]);
    } finally {
      closeSync(a);
      closeSync(b);
    }
    // a device that cannot be opened stops the launch with a named error, before the exec
    const { file, args } = plainCommand(null, { tap: null, kvm: join(dir, 'missing') }, ['touch', join(dir, 'ran')]);
    const r = spawnSync(file, args, { encoding: 'utf8' });
    assert.equal(r.status, 97);
    assert.match(r.stderr, /^kiln-vmm-launch: open .*missing: No such file or directory\n$/);
    assert.equal(existsSync(join(dir, 'ran')), false, 'the command did not run');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with no netns and no device the command runs without the launcher', () => {
  assert.deepEqual(plainCommand(null, { tap: null, kvm: null }, ['qemu-system-x86_64', '-M', 'none']), { file: 'qemu-system-x86_64', args: ['-M', 'none'] });
});
