import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createVmmFile, giveFileToVmm, openVmmLog, prepareVmmDir, reclaimOwnership, sealVmmDir } from './vmm-dir.js';
import { receiveState } from './migrate-out.js';

const root = process.getuid?.() === 0;
const nobody = { uid: 65534, gid: 65534 };

function fixture(): { dir: string; canary: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-vmmdir-'));
  const canary = join(dir, 'canary');
  writeFileSync(canary, 'untouched\n', { mode: 0o600 });
  chmodSync(canary, 0o600);
  return { dir, canary, done: () => rmSync(dir, { recursive: true, force: true }) };
}

function unchanged(canary: string): void {
  const st = statSync(canary);
  assert.equal(readFileSync(canary, 'utf8'), 'untouched\n');
  assert.equal(st.mode & 0o7777, 0o600);
  assert.equal(st.uid, process.getuid?.());
}

test('root opens no link where the VMM can reach: the log, a disk, a RAM file', () => {
  const f = fixture();
  try {
    for (const name of ['vmm.log', 'disk', 'mem']) symlinkSync(f.canary, join(f.dir, name));
    assert.throws(() => openVmmLog(join(f.dir, 'vmm.log')), { code: 'VMM_PATH_UNSAFE' });
    assert.throws(() => giveFileToVmm(join(f.dir, 'disk'), nobody), { code: 'VMM_PATH_UNSAFE' });
    assert.throws(() => createVmmFile(join(f.dir, 'mem'), 4096, nobody), { code: 'VMM_PATH_UNSAFE' });
    unchanged(f.canary);
  } finally {
    f.done();
  }
});

test('reclaimOwnership changes no link target', { skip: root ? false : 'needs root (chown)' }, () => {
  const f = fixture();
  try {
    const tree = join(f.dir, 'tree');
    mkdirSync(tree);
    writeFileSync(join(tree, 'state'), 'x');
    chownSync(join(tree, 'state'), nobody.uid, nobody.gid);
    chownSync(f.canary, nobody.uid, nobody.gid);
    symlinkSync(f.canary, join(tree, 'link'));
    reclaimOwnership(tree);
    assert.equal(statSync(join(tree, 'state')).uid, 0);
    assert.equal(statSync(f.canary).uid, nobody.uid, 'the link target keeps its owner');
  } finally {
    f.done();
  }
});

test('the VMM directory is made afresh for the VMM user and sealed root-owned 0711', { skip: root ? false : 'needs root (chown)' }, () => {
  const f = fixture();
  try {
    const vmm = join(f.dir, 'vmm');
    mkdirSync(vmm);
    symlinkSync(f.canary, join(vmm, 'planted'));
    prepareVmmDir(vmm, nobody);
    assert.equal(existsSync(join(vmm, 'planted')), false, 'what an earlier launch left is gone');
    assert.equal(statSync(vmm).uid, nobody.uid);
    sealVmmDir(vmm);
    const st = statSync(vmm);
    assert.equal(st.uid, 0);
    assert.equal(st.mode & 0o777, 0o711);
    unchanged(f.canary);
  } finally {
    f.done();
  }
});

test('a device state arrives over a socket into a file root opened; a link at the socket path is replaced, not followed', async () => {
  const f = fixture();
  try {
    const sock = join(f.dir, 'migrate.sock');
    symlinkSync(f.canary, sock);
    const state = join(f.dir, 'state');
    const rx = await receiveState(sock, state);
    assert.equal(rx.uri, `unix:${sock}`);
    const payload = Buffer.alloc(3 * 1024 * 1024, 7);
    await new Promise<void>((resolve, reject) => {
      const c = connect(sock, () => c.end(payload, () => resolve()));
      c.on('error', reject);
    });
    assert.equal(await rx.done, payload.length);
    rx.close();
    assert.deepEqual(readFileSync(state), payload);
    assert.equal(statSync(state).mode & 0o777, 0o600);
    assert.equal(existsSync(sock), false);
    unchanged(f.canary);
    // the state file must be new: a link (or anything) already there is refused
    symlinkSync(f.canary, join(f.dir, 'state2'));
    await assert.rejects(receiveState(sock, join(f.dir, 'state2')));
    unchanged(f.canary);
  } finally {
    f.done();
  }
});

test('a VMM that never connects: done rejects once closed', async () => {
  const f = fixture();
  try {
    const rx = await receiveState(join(f.dir, 'm.sock'), join(f.dir, 'state'));
    rx.close();
    await assert.rejects(rx.done, { code: 'SNAPSHOT_FAILED' });
  } finally {
    f.done();
  }
});
