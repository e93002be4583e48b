// Integration: the bundled agent serving a real virtio-serial port in a QEMU microVM.
// Opt-in because it needs QEMU and a guest image built by `kilnd image build`:
//   KILN_TEST_IMAGE_DIR=/path/to/image/<hash> node --test packages/agent/dist/port.test.js
// The image is never modified: the bundle under test is placed on a private scratch disk in
// the overlay's upper dir, shadowing the image's /opt/kiln/agent/kiln-agent.cjs.

import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { AgentClient, FrameDecoder, type Frame } from '@kiln/protocol';
import { BUNDLE } from './test-agent.js';

const imageDir = process.env.KILN_TEST_IMAGE_DIR;
const skip = !imageDir
  ? 'set KILN_TEST_IMAGE_DIR to a built guest image dir (vmlinuz, initrd.img, rootfs.ext4) to run'
  : !existsSync(join(imageDir, 'rootfs.ext4'))
    ? `${imageDir} has no rootfs.ext4`
    : !hasBinary('qemu-system-x86_64') || !hasBinary('mkfs.ext4')
      ? 'needs qemu-system-x86_64 and mkfs.ext4'
      : false;

function hasBinary(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function tscKhz(): number | undefined {
  const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^cpu MHz\s*:\s*([\d.]+)/m);
  return m ? Math.round(Number(m[1]) * 1000) : undefined;
}

let dir: string;
let qemu: ChildProcess | undefined;
let socket: string;

before(async () => {
  if (skip) return;
  const img = imageDir as string;
  dir = mkdtempSync(join(tmpdir(), 'kiln-port-test-'));
  socket = join(dir, 'agent.sock');
  const tree = join(dir, 'scratch-tree');
  mkdirSync(join(tree, 'upper/opt/kiln/agent'), { recursive: true });
  mkdirSync(join(tree, 'work'));
  copyFileSync(BUNDLE, join(tree, 'upper/opt/kiln/agent/kiln-agent.cjs'));
  execFileSync('truncate', ['-s', '1G', join(dir, 'scratch.img')]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', tree, join(dir, 'scratch.img')]);
  const khz = tscKhz();
  const cmdline = ['rdinit=/init panic=-1 quiet console=ttyS0 edd=off kiln.hostname=porttest'];
  if (khz) cmdline.push(`tsc_early_khz=${khz}`, 'tsc=reliable', `lpj=${Math.round((khz * 1000) / 250)}`);
  // prettier-ignore
  qemu = spawn('qemu-system-x86_64', [
    '-M', 'microvm,rtc=on', '-accel', 'tcg,tb-size=128', '-m', '1024', '-smp', '2',
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
    '-kernel', join(img, 'vmlinuz'), '-initrd', join(img, 'initrd.img'), '-append', cmdline.join(' '),
    '-drive', `id=root,file=${join(img, 'rootfs.ext4')},format=raw,if=none,readonly=on`,
    '-device', 'virtio-blk-device,drive=root,serial=kiln-root',
    '-drive', `id=scratch,file=${join(dir, 'scratch.img')},format=raw,if=none`,
    '-device', 'virtio-blk-device,drive=scratch,serial=kiln-scratch',
    '-device', 'virtio-serial-device',
    '-chardev', `socket,id=agent,path=${socket},server=on,wait=off`,
    '-device', 'virtserialport,chardev=agent,name=org.kiln.agent',
    '-chardev', `file,id=con,path=${join(dir, 'console.log')}`, '-serial', 'chardev:con',
  ], { stdio: 'ignore' });
});

after(async () => {
  if (qemu && qemu.exitCode === null) {
    qemu.kill('SIGKILL');
    await once(qemu, 'exit');
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function consoleTail(): string {
  try {
    return readFileSync(join(dir, 'console.log'), 'utf8').split('\n').slice(-30).join('\n');
  } catch {
    return '(no console log)';
  }
}

test('the agent serves a real virtio-serial port: exec, files, reconnects, garbage', { skip, timeout: 180_000 }, async () => {
  let client: AgentClient;
  try {
    client = await AgentClient.connect(socket, { timeoutMs: 120_000 });
  } catch (err) {
    throw new Error(`agent never answered; guest console:\n${consoleTail()}`, { cause: err });
  }
  assert.equal(client.agentInfo?.hostname, 'porttest');
  const out: Buffer[] = [];
  const r = await client.exec({ shell: 'echo hi; exit 4' }, { onStdout: (b) => void out.push(b) }).result;
  assert.deepEqual([r.exitCode, Buffer.concat(out).toString()], [4, 'hi\n']);

  const data = randomBytes(1024 * 1024 + 5);
  await client.writeFile('/tmp/x.bin', Readable.from([data]));
  const { stream, result } = client.readFile('/tmp/x.bin');
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(p as Buffer);
  await result;
  assert.ok(Buffer.concat(parts).equals(data));

  // Host disconnects mid-exec: the guest sees EOF, kills the exec, reopens the port.
  const h = client.exec({ argv: ['sleep', '60'] });
  await new Promise((res) => setTimeout(res, 300));
  client.close();
  await assert.rejects(h.result);
  client = await AgentClient.connect(socket, { timeoutMs: 10_000 });
  let left = '';
  for (let i = 0; i < 20; i++) {
    const ps: Buffer[] = [];
    await client.exec({ shell: 'ps -eo pid,ppid,stat,args | grep "[s]leep 60" || true' }, { onStdout: (b) => void ps.push(b) }).result;
    left = Buffer.concat(ps).toString();
    if (left === '') break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(left, '', 'the dropped session left its exec running');

  // sys.configure, as after a snapshot restore: clock, hostname, machine-id, entropy.
  const target = Date.now() + 3_600_000;
  await client.configure({ timeEpochMs: target, hostname: 'clone-2', machineId: 'c0ffee'.repeat(5) + 'ab', entropyHex: 'ff'.repeat(64) });
  const sys: Buffer[] = [];
  await client.exec({ shell: 'date +%s; hostname; cat /etc/hostname /etc/machine-id' }, { onStdout: (b) => void sys.push(b) }).result;
  const [secs, hostname, etcHostname, machineId] = Buffer.concat(sys).toString().trim().split('\n');
  assert.ok(Math.abs(Number(secs) * 1000 - target) < 10_000, `guest clock ${secs}, wanted ~${target / 1000}`);
  assert.deepEqual([hostname, etcHostname, machineId], ['clone-2', 'clone-2', 'c0ffee'.repeat(5) + 'ab']);
  client.close();
  client = await AgentClient.connect(socket, { timeoutMs: 10_000 });
  assert.equal(client.agentInfo?.hostname, 'clone-2');
  client.close();

  // Garbage: an id-0 error reply, then a fresh connection works.
  const raw = connect(socket);
  await once(raw, 'connect');
  const frames: Frame[] = [];
  const d = new FrameDecoder();
  raw.on('data', (c: Buffer) => frames.push(...d.push(c)));
  raw.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
  for (let i = 0; i < 100 && frames.length === 0; i++) await new Promise((res) => setTimeout(res, 50));
  raw.destroy();
  assert.equal(frames[0]?.header.id, 0);
  client = await AgentClient.connect(socket, { timeoutMs: 10_000 });
  assert.ok((await client.health()).memTotalKiB > 0);
  client.close();
});
