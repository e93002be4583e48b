// The QEMU driver finds its own VMM processes (orphan GC) by run dir and marker, and kills only
// what it found; a process under another state directory is not its.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findQemuVmms } from './qemu.js';

/** A stand-in VMM: a sleeping shell whose command line carries a VMM's marker and run dir. */
function standIn(runRoot: string, id: string) {
  const p = spawn('sh', ['-c', 'sleep 60', `kiln-${id}`, `${runRoot}/${id}/qmp.sock`], { stdio: 'ignore' });
  const exited = new Promise<string | null>((r) => p.once('exit', (_code, sig) => r(sig)));
  return { p, exited };
}

test('findVmms: VMMs under this run root, by id; kill() ends the one found', async () => {
  const root = mkdtempSync(join(tmpdir(), 'kiln-unit-vmms-'));
  const ours = standIn(join(root, 'a', 'sandboxes'), 'sb-0123456789ab');
  const theirs = standIn(join(root, 'b', 'sandboxes'), 'sb-ba9876543210');
  try {
    await new Promise((r) => setTimeout(r, 100));
    const found = findQemuVmms(join(root, 'a', 'sandboxes'));
    assert.deepEqual(found.map((f) => [f.id, f.pid]), [['sb-0123456789ab', ours.p.pid]]);
    assert.equal(found[0]?.kill(), true);
    assert.equal(await ours.exited, 'SIGKILL');
    assert.equal(theirs.p.exitCode, null, 'another state directory\'s VMM is left alone');
    assert.deepEqual(findQemuVmms(join(root, 'a', 'sandboxes')), []);
  } finally {
    ours.p.kill('SIGKILL');
    theirs.p.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
});
