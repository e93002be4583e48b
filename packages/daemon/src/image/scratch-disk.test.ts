import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { KilnError } from '../errors.js';
import { findTool, toolSearchPath } from './host-tools.js';
import { createScratchDisk } from './scratch-disk.js';

const hasMkfs = findTool('mkfs.ext4', toolSearchPath()) !== null;

describe('createScratchDisk', { skip: hasMkfs ? false : 'mkfs.ext4 not installed (apt-get install e2fsprogs)' }, () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-scratch-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('makes a sparse ext4 file of the requested apparent size, labelled kiln-scratch', async () => {
    const path = join(dir, 'scratch.img');
    const t0 = Date.now();
    await createScratchDisk(path, 8);
    const ms = Date.now() - t0;
    const st = await stat(path);
    assert.equal(st.size, 8 * 1024 ** 3);
    const realBytes = st.blocks * 512;
    assert.ok(realBytes < 64 * 1024 ** 2, `real usage ${realBytes} bytes should be far below the 8 GiB apparent size`);
    assert.ok(ms < 10_000, `took ${ms} ms`);
    const e2label = findTool('e2label', toolSearchPath());
    if (e2label) assert.equal(execFileSync(e2label, [path]).toString().trim(), 'kiln-scratch');
    const blkinfo = execFileSync(findTool('dumpe2fs', toolSearchPath()) ?? 'dumpe2fs', ['-h', path], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    assert.match(blkinfo, /Filesystem volume name:\s+kiln-scratch/);
    assert.match(blkinfo, /Block count:\s+2097152/);
  });

  it('rejects a size that is not a whole number of GiB in range, creating nothing', async () => {
    for (const bad of [0, -1, 1.5, Number.NaN, 100_000]) {
      await assert.rejects(createScratchDisk(join(dir, `bad-${bad}.img`), bad), (err: unknown) => err instanceof KilnError && err.code === 'INVALID_ARGUMENT');
      await assert.rejects(stat(join(dir, `bad-${bad}.img`)));
    }
  });
});
