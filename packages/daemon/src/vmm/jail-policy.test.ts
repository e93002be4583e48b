import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { decideJail, insecureNoJailFromEnv, jailRefused } from './jail-policy.js';
import { checkJail } from '../doctor/checks.js';
import { QemuDriver } from './qemu.js';
import type { VmSpec } from './driver.js';

test('root jails QEMU; a kilnd that is not root refuses VMs unless told --insecure-no-jail', () => {
  assert.equal(decideJail({ uid: 0, insecureNoJail: false }).mode, 'jailed');
  const refused = decideJail({ uid: 1000, insecureNoJail: false });
  assert.equal(refused.mode, 'refused');
  assert.match(refused.reason, /--insecure-no-jail/);
  assert.equal(decideJail({ uid: undefined, insecureNoJail: false }).mode, 'refused', 'an unknown uid is not root');
  assert.equal(decideJail({ uid: 1000, insecureNoJail: true }).mode, 'insecure-no-jail');
  // the flag means no jail, also for root: what the operator asked for is what runs (and is named)
  assert.equal(decideJail({ uid: 0, insecureNoJail: true }).mode, 'insecure-no-jail');
  const e = jailRefused(refused);
  assert.equal(e.code, 'VMM_JAIL_UNAVAILABLE');
  assert.equal(e.status, 503);
});

test('KILN_INSECURE_NO_JAIL is the env equivalent of the flag', () => {
  assert.equal(insecureNoJailFromEnv({}), false);
  assert.equal(insecureNoJailFromEnv({ KILN_INSECURE_NO_JAIL: '0' }), false);
  assert.equal(insecureNoJailFromEnv({ KILN_INSECURE_NO_JAIL: '1' }), true);
  assert.equal(insecureNoJailFromEnv({ KILN_INSECURE_NO_JAIL: 'true' }), true);
});

test('kilnd doctor names the jail: ok jailed, warns when insecure, fails when VMs would be refused', () => {
  assert.equal(checkJail(false, 0).status, 'ok');
  const insecure = checkJail(true, 1000);
  assert.equal(insecure.status, 'warn');
  assert.match(insecure.detail, /INSECURE.*--insecure-no-jail/);
  assert.equal(checkJail(false, 1000).status, 'fail');
});

const qemu = (() => {
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

test('the QEMU driver of a kilnd that is not root starts no VM and says why', { skip: qemu ? false : 'qemu-system-x86_64 is not installed' }, async () => {
  const d = new QemuDriver({ accel: 'tcg', uid: 1000, insecureNoJail: false });
  assert.equal(d.jail, null);
  assert.equal(d.capabilities().jail, 'refused');
  const spec: VmSpec = { id: 'sb-000000000000', runDir: '/nonexistent/run', memoryMiB: 256, vcpus: 1, kernel: '/k', initrd: '/i', rootfs: '/r', scratch: '/s', cmdline: '' };
  await assert.rejects(d.start(spec), { code: 'VMM_JAIL_UNAVAILABLE' });
  const insecure = new QemuDriver({ accel: 'tcg', uid: 1000, insecureNoJail: true });
  assert.equal(insecure.jail, null);
  assert.equal(insecure.capabilities().jail, 'insecure-no-jail');
});
