import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { acquireSubnetLock, heldSubnets, isLockHeld, lockFileName } from './subnet-lock.js';
import { type Cidr, parseCidr } from './ipv4.js';

const cidr = (s: string) => parseCidr(s) as Cidr;

const refusal = async (p: Promise<unknown>): Promise<string> => {
  try {
    await p;
  } catch (err) {
    assert.equal((err as { code?: string }).code, 'NETWORK_SUBNET_IN_USE');
    return (err as Error).message;
  }
  return assert.fail('expected NETWORK_SUBNET_IN_USE');
};

test('one holder per subnet; the refusal names the holder; released on release', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const a = await acquireSubnetLock(cidr('10.201.0.0/16'), { lockDir: dir, stateDir: '/var/lib/kiln-a' });
  assert.equal(a.path, join(dir, lockFileName(cidr('10.201.0.0/16'))));
  assert.equal(await isLockHeld(a.path), true);
  const msg = await refusal(acquireSubnetLock(cidr('10.201.0.0/16'), { lockDir: dir, stateDir: '/var/lib/kiln-b' }));
  assert.match(msg, new RegExp(`10\\.201\\.0\\.0/16 is in use by kilnd pid ${process.pid} \\(state dir /var/lib/kiln-a`));
  // an overlapping subnet is refused too, a disjoint one is not
  assert.match(await refusal(acquireSubnetLock(cidr('10.201.16.0/20'), { lockDir: dir, stateDir: '/b' })), /overlapping 10\.201\.0\.0\/16/);
  const c = await acquireSubnetLock(cidr('10.202.0.0/16'), { lockDir: dir, stateDir: '/c' });
  assert.deepEqual((await heldSubnets(dir)).map((h) => h.holder?.stateDir).sort(), ['/c', '/var/lib/kiln-a']);
  a.release();
  c.release();
  assert.equal(await isLockHeld(a.path), false, 'the lock file stays, but nobody holds it');
  const again = await acquireSubnetLock(cidr('10.201.0.0/16'), { lockDir: dir, stateDir: '/var/lib/kiln-b' });
  again.release();
});

test('a holder that dies releases the subnet (no stale locks)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-lock-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const script = `import('${join(import.meta.dirname, 'subnet-lock.js')}').then(async (m) => { await m.acquireSubnetLock({ base: 0x0ac90000, prefix: 16 }, { lockDir: '${dir}', stateDir: '/child' }); process.stdout.write('locked\\n'); setInterval(() => {}, 1000); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((r) => child.stdout.once('data', () => r()));
  assert.match(await refusal(acquireSubnetLock(cidr('10.201.0.0/16'), { lockDir: dir, stateDir: '/me' })), /state dir \/child/);
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await gone;
  const mine = await acquireSubnetLock(cidr('10.201.0.0/16'), { lockDir: dir, stateDir: '/me' });
  mine.release();
});
