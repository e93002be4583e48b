// Overlays over a real (sparse) backing file, checked with qemu-img itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { OverlayMaker } from './overlay.js';

const skip = (() => {
  try {
    execFileSync('qemu-img', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'needs qemu-img (scripts/setup.sh installs it)';
  }
})();

const info = (path: string) => JSON.parse(execFileSync('qemu-img', ['info', '--output=json', path]).toString()) as Record<string, unknown>;

test('overlays of one backing file are identical qcow2 files; a new backing file gets its own', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-overlay-'));
  try {
    const backing = join(dir, 'scratch.img');
    writeFileSync(backing, '');
    truncateSync(backing, 64 * 1024 * 1024);
    const m = new OverlayMaker();
    await m.create(backing, join(dir, 'a.qcow2'));
    await m.create(backing, join(dir, 'b.qcow2')); // from memory
    assert.deepEqual(readFileSync(join(dir, 'b.qcow2')), readFileSync(join(dir, 'a.qcow2')));
    const b = info(join(dir, 'b.qcow2'));
    assert.equal(b.format, 'qcow2');
    assert.equal(b['backing-filename'], backing);
    assert.equal(b['backing-filename-format'], 'raw');
    assert.equal(b['virtual-size'], 64 * 1024 * 1024);
    assert.equal(statSync(join(dir, 'b.qcow2')).mode & 0o777, 0o600);
    execFileSync('qemu-img', ['check', join(dir, 'b.qcow2')]);

    // An existing file is never overwritten, and is left in place.
    writeFileSync(join(dir, 'taken'), 'mine');
    await assert.rejects(m.create(backing, join(dir, 'taken')), { code: 'OVERLAY_FAILED' });
    assert.equal(readFileSync(join(dir, 'taken'), 'utf8'), 'mine');

    // The backing file replaced by one of another size: a fresh overlay, not the cached bytes.
    rmSync(backing);
    writeFileSync(backing, '');
    truncateSync(backing, 32 * 1024 * 1024);
    await m.create(backing, join(dir, 'c.qcow2'));
    assert.equal(info(join(dir, 'c.qcow2'))['virtual-size'], 32 * 1024 * 1024);

    // A missing backing file: a clear error naming it, nothing left behind.
    await assert.rejects(m.create(join(dir, 'gone.img'), join(dir, 'd.qcow2')), (err: Error & { code?: string }) => err.code === 'OVERLAY_FAILED' && /gone\.img/.test(err.message));
    assert.throws(() => statSync(join(dir, 'd.qcow2')), { code: 'ENOENT' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
