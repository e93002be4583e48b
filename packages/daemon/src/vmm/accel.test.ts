import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseAccel, hostTscKhz } from './accel.js';

const cpu = (flags: string) => `processor\t: 0\ncpu MHz\t\t: 2596.118\nflags\t\t: fpu ${flags} sse2\n`;

test('auto picks KVM only with vmx/svm and a working /dev/kvm', () => {
  assert.equal(chooseAccel('auto', { cpuinfo: cpu('vmx'), kvmDevice: '/dev/null' }).accel, 'kvm');
  assert.equal(chooseAccel('auto', { cpuinfo: cpu('svm'), kvmDevice: '/dev/null' }).accel, 'kvm');
  const pvm = chooseAccel('auto', { cpuinfo: cpu('hypervisor'), kvmDevice: '/dev/null', pvmModule: '/' });
  assert.equal(pvm.accel, 'tcg');
  assert.match(pvm.reason, /no vmx\/svm.*kvm-pvm/);
  assert.equal(chooseAccel('auto', { cpuinfo: cpu('vmx'), kvmDevice: '/nonexistent/kvm' }).accel, 'tcg');
});

test('forcing works and forcing kvm without a device is a clear error', () => {
  assert.equal(chooseAccel('tcg', { cpuinfo: cpu('vmx'), kvmDevice: '/dev/null' }).accel, 'tcg');
  assert.equal(chooseAccel('kvm', { cpuinfo: cpu(''), kvmDevice: '/dev/null' }).accel, 'kvm');
  assert.throws(() => chooseAccel('kvm', { cpuinfo: cpu('vmx'), kvmDevice: '/nonexistent/kvm' }), { code: 'ACCEL_UNAVAILABLE' });
});

test('host TSC kHz comes from cpu MHz', () => {
  assert.equal(hostTscKhz(cpu('')), 2596118);
  assert.equal(hostTscKhz('nothing'), null);
});
