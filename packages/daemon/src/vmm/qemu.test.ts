import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildQemuArgs } from './qemu.js';

const spec = {
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

test('QEMU args: microvm, no defaults, read-only root, only the needed devices', () => {
  const a = buildQemuArgs(spec, 'tcg', { tcgTbSizeMiB: 128, tscKhz: 2596118 });
  const s = a.join(' ');
  for (const want of ['-nodefaults', '-no-user-config', '-no-reboot', 'tcg,tb-size=128', 'readonly=on', 'serial=kiln-root', 'serial=kiln-scratch', 'name=org.kiln.agent', 'tsc_early_khz=2596118']) {
    assert.ok(s.includes(want), `missing ${want}`);
  }
  assert.equal(a[a.indexOf('-M') + 1]?.startsWith('microvm'), true);
  assert.equal(a[a.indexOf('-m') + 1], '512');
  assert.ok(s.includes('kiln-sb-0123456789ab'), 'process carries the sandbox id');
  assert.ok(!s.includes('-netdev') && !s.includes('virtfs') && !s.includes('9p'), 'no host paths or network devices');
});

test('TCG guests get an always-running APIC timer (without it they cannot go tickless)', () => {
  const a = buildQemuArgs(spec, 'tcg', { tcgTbSizeMiB: 128, tscKhz: 2596118 });
  assert.equal(a[a.indexOf('-cpu') + 1], 'qemu64,+arat');
});

test('KVM args use -accel kvm and no TCG clock hacks', () => {
  const s = buildQemuArgs(spec, 'kvm', { tcgTbSizeMiB: 128, tscKhz: 2596118 }).join(' ');
  assert.ok(s.includes('-accel kvm'));
  assert.ok(!s.includes('tb-size') && !s.includes('tsc_early_khz'));
});

test('QEMU args: guest output goes only to sockets kilnd reads (no QEMU-written console file)', () => {
  const a = buildQemuArgs(spec, 'tcg', { tcgTbSizeMiB: 128, tscKhz: null });
  const s = a.join(' ');
  assert.ok(!/-chardev file/.test(s) && !/(^| )file,/.test(s), 'no file chardev');
  assert.ok(s.includes(`socket,id=con,path=${spec.runDir}/vmm/console.sock,server=on,wait=off`));
  assert.ok(s.includes(`socket,id=logs,path=${spec.runDir}/vmm/logs.sock,server=on,wait=off`));
  assert.ok(s.includes('virtserialport,chardev=logs,name=org.kiln.logs'));
  assert.equal(a[a.indexOf('-serial') + 1], 'chardev:con');
});

test('QEMU args: a balloon with free page reporting; a template guest is told to leave it off', () => {
  const plain = buildQemuArgs(spec, 'tcg', { tcgTbSizeMiB: 128, tscKhz: null });
  assert.ok(plain.includes('virtio-balloon-device,free-page-reporting=on'));
  assert.ok(!plain[plain.indexOf('-append') + 1]?.includes('kiln.page_reporting=off'));
  const template = buildQemuArgs({ ...spec, memory: { file: '/t/mem', mode: 'template' } }, 'tcg', { tcgTbSizeMiB: 128, tscKhz: null });
  assert.ok(template[template.indexOf('-append') + 1]?.includes('kiln.page_reporting=off'));
  const clone = buildQemuArgs({ ...spec, memory: { file: '/t/mem', mode: 'clone' } }, 'tcg', { tcgTbSizeMiB: 128, tscKhz: null });
  assert.ok(clone.includes('virtio-balloon-device,free-page-reporting=on'), 'a clone has the same device set as its template');
  // the device list, not the kernel arguments, makes the layout: templates and clones match
  const devices = (a: string[]) => a.filter((_, i) => a[i - 1] === '-device');
  assert.deepEqual(devices(template), devices(clone));
});
