/**
 * Removes superseded images so repeated builds (every agent change makes a new image) do not
 * fill the disk. The newest `keep` images stay; a VM still running from a removed image is
 * unaffected (QEMU holds its files open), but nothing new can start from it.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { readManifest } from './manifest.js';

/** How many built images buildImage keeps (the new one included). */
export const DEFAULT_KEEP_IMAGES = 3;

/** Removes all but the `keep` newest images in <stateDir>/images (and never those in `pinned`); returns the removed hashes. */
export async function pruneImages(stateDir: string, opts: { keep?: number; pinned?: readonly string[] } = {}): Promise<string[]> {
  const keep = opts.keep ?? DEFAULT_KEEP_IMAGES;
  const dir = join(stateDir, 'images');
  const found: { hash: string; builtAt: string }[] = [];
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{16}$/.test(name)) continue;
    const m = await readManifest(join(dir, name));
    found.push({ hash: name, builtAt: m?.builtAt ?? '' });
  }
  found.sort((a, b) => b.builtAt.localeCompare(a.builtAt));
  const removed: string[] = [];
  for (const { hash } of found.slice(keep)) {
    if (opts.pinned?.includes(hash)) continue;
    await rm(join(dir, hash), { recursive: true, force: true });
    removed.push(hash);
  }
  return removed;
}
