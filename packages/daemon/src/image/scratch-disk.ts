/**
 * A VM's scratch disk: a sparse file with an ext4 filesystem labelled kiln-scratch. It holds
 * the overlay's upper layer and /scratch/docker. Inode tables and journal are left
 * uninitialised (lazy init; the guest mounts it with noinit_itable), so making even a large
 * disk writes only a few MiB.
 */
import { open, rm } from 'node:fs/promises';
import { invalidArgument } from '../errors.js';
import { run } from './exec.js';
import { requireTools } from './host-tools.js';

export const SCRATCH_LABEL = 'kiln-scratch';
/** Largest scratch disk createScratchDisk accepts, in GiB. */
export const MAX_SCRATCH_GIB = 1024;

/** Creates (or replaces) `path` as a sparse `sizeGiB` GiB ext4 disk; removes it again on failure. */
export async function createScratchDisk(path: string, sizeGiB: number): Promise<void> {
  if (!Number.isInteger(sizeGiB) || sizeGiB < 1 || sizeGiB > MAX_SCRATCH_GIB) {
    throw invalidArgument(`diskGiB must be an integer from 1 to ${MAX_SCRATCH_GIB}, got ${sizeGiB}`, { field: 'diskGiB' });
  }
  const { 'mkfs.ext4': mkfs } = requireTools(['mkfs.ext4']);
  const fh = await open(path, 'w', 0o600);
  try {
    await fh.truncate(sizeGiB * 1024 ** 3);
  } finally {
    await fh.close();
  }
  try {
    await run(mkfs as string, ['-q', '-F', '-L', SCRATCH_LABEL, '-m', '0', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard', path]);
  } catch (err) {
    await rm(path, { force: true });
    throw err;
  }
}
