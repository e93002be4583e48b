import { strict as assert } from 'node:assert';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pruneImages } from './prune.js';

test('pruneImages keeps the newest images and pinned ones, and leaves the cache alone', async () => {
  const state = await mkdtemp(join(tmpdir(), 'kiln-prune-'));
  try {
    const images = join(state, 'images');
    await mkdir(join(images, 'cache/base-x'), { recursive: true });
    const hashes = ['aaaaaaaaaaaaaaa1', 'aaaaaaaaaaaaaaa2', 'aaaaaaaaaaaaaaa3', 'aaaaaaaaaaaaaaa4'];
    for (const [i, h] of hashes.entries()) {
      await mkdir(join(images, h));
      for (const f of ['vmlinuz', 'initrd.img', 'rootfs.ext4']) await writeFile(join(images, h, f), 'x');
      await writeFile(join(images, h, 'manifest.json'), JSON.stringify({ formatVersion: 1, hash: h, builtAt: `2026-01-0${i + 1}T00:00:00Z` }));
    }
    const removed = await pruneImages(state, { keep: 2, pinned: ['aaaaaaaaaaaaaaa1'] });
    assert.deepEqual(removed, ['aaaaaaaaaaaaaaa2']);
    assert.deepEqual((await readdir(images)).sort(), ['aaaaaaaaaaaaaaa1', 'aaaaaaaaaaaaaaa3', 'aaaaaaaaaaaaaaa4', 'cache']);
  } finally {
    await rm(state, { recursive: true, force: true });
  }
});
