/**
 * The host-device fds through the real jail, without booting a guest (`-M none -S`: QEMU
 * starts, attaches the TAP, opens KVM, and waits). Needs root, qemu-system-x86_64 and
 * `ip`; KVM is checked where /dev/kvm can be opened (even a kvm-pvm /dev/kvm, which cannot
 * run stock guests, creates VMs). The TAP lives in a network namespace this test creates.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sleep } from '../util/proc.js';
import { kvmAccelArgs, TAP_FD, tapNetdevArgs } from './host-fds.js';
import { ensureVmmIdentity, jailCommand, jailedChildPid } from './jail.js';
import { QEMU_SANDBOX } from './qemu.js';
import { QmpClient } from './qmp.js';

function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (jail, netns, TAP)';
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'needs qemu-system-x86_64 and ip';
  }
  return null;
}

function kvmUsable(): boolean {
  try {
    closeSync(openSync('/dev/kvm', 'r+'));
    return true;
  } catch {
    return false;
  }
}

const skip = skipReason();

test('jailed QEMU gets its TAP (and /dev/kvm) as inherited fds and has neither device node', { skip: skip ?? false }, async (t) => {
  const hex = randomBytes(4).toString('hex');
  const netns = `kiln-fdtest-${hex}`;
  const tap = `ktfd${hex}`;
  const kvm = kvmUsable();
  const dir = mkdtempSync('/tmp/kiln-fdjail-');
  const runDir = join(dir, 'run');
  mkdirSync(runDir, { mode: 0o700 });
  const identity = ensureVmmIdentity();
  chownSync(runDir, identity.uid, identity.gid);
  let child: ReturnType<typeof spawn> | null = null;
  try {
    execFileSync('ip', ['netns', 'add', netns]);
    // root-owned (no `user`): the VMM user could not attach to it itself
    execFileSync('ip', ['-n', netns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
    execFileSync('ip', ['-n', netns, 'link', 'set', tap, 'up']);
    const qmpSocket = join(runDir, 'qmp.sock');
    const argv = [
      'qemu-system-x86_64', '-name', `kiln-fdtest-${hex}`, '-M', 'none', '-S', '-nodefaults', '-no-user-config', '-display', 'none',
      '-sandbox', QEMU_SANDBOX,
      ...(kvm ? kvmAccelArgs() : ['-accel', 'tcg']),
      ...tapNetdevArgs(),
      '-qmp', `unix:${qmpSocket},server=on,wait=off`,
    ];
    const { file, args } = jailCommand(
      {
        root: join(runDir, 'jail'),
        readOnly: [],
        readWrite: [runDir],
        hostDevices: { tap, kvm: kvm ? '/dev/kvm' : null },
        cgroupProcs: [],
        rlimits: { fsizeBytes: 64 << 20, nofile: 256 },
        netns,
        identity,
      },
      argv,
    );
    mkdirSync(join(runDir, 'jail'), { mode: 0o700 });
    const log = openSync(join(dir, 'vmm.log'), 'a');
    child = spawn(file, args, { detached: true, stdio: ['ignore', log, log] });
    closeSync(log);
    const deadline = Date.now() + 15_000;
    while (!existsSync(qmpSocket) && Date.now() < deadline && child.exitCode === null) await sleep(20);
    assert.ok(existsSync(qmpSocket), `QEMU did not start: ${readFileSync(join(dir, 'vmm.log'), 'utf8')}`);
    const pid = jailedChildPid(child.pid ?? 0);
    assert.ok(pid !== null, 'QEMU is the launcher\'s child');

    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    assert.match(status, new RegExp(`^Uid:\\s+${identity.uid}\\s`, 'm'));
    assert.match(status, /^Groups:\s*$/m, 'no supplementary group (no kvm group)');
    // the TAP queue is fd 3, attached to this sandbox's TAP (its path shows relative to the
    // launcher's /dev mount, which is not in the host's namespace: `/net/tun`)
    assert.match(readlinkSync(`/proc/${pid}/fd/${TAP_FD}`), /^(\/dev)?\/net\/tun$/);
    assert.match(readFileSync(`/proc/${pid}/fdinfo/${TAP_FD}`, 'utf8'), new RegExp(`^iff:\\s+${tap}$`, 'm'));
    // with a queue attached the TAP has carrier (an unattached TAP is NO-CARRIER)
    assert.doesNotMatch(execFileSync('ip', ['-n', netns, 'link', 'show', tap], { encoding: 'utf8' }), /NO-CARRIER/);
    // no device node in the jail: QEMU could not open either by itself
    const dev = readdirSync(`/proc/${pid}/root/dev`).sort();
    assert.deepEqual(dev, ['null', 'urandom', 'zero']);

    const q = await QmpClient.connect(qmpSocket, 5000);
    try {
      const info = await q.execute<{ enabled: boolean; present: boolean }>('query-kvm');
      if (kvm) {
        assert.equal(info.enabled, true, 'KVM enabled from the inherited fd');
        // QEMU keeps a dup of fd 4 in its fd set (and closes fd 4 itself after start-up)
        const targets = readdirSync(`/proc/${pid}/fd`).map((n) => readlinkSync(`/proc/${pid}/fd/${n}`));
        assert.ok(targets.some((x) => /^(\/dev)?\/kvm$/.test(x)), `QEMU holds the KVM fd: ${targets.join(' ')}`);
        t.diagnostic('KVM: enabled from the inherited fd (QEMU never opened /dev/kvm)');
      } else {
        t.diagnostic('/dev/kvm cannot be opened here: the KVM fd was not checked');
      }
    } finally {
      q.close();
    }
  } finally {
    if (child?.pid !== undefined && child.exitCode === null) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
      for (let i = 0; i < 100 && child.exitCode === null && child.signalCode === null; i++) await sleep(20);
    }
    try {
      execFileSync('ip', ['netns', 'del', netns], { stdio: 'ignore' });
    } catch {
      // never created
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
