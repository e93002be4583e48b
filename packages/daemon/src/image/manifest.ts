/** The manifest of a built image (manifest.json in its directory). */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface ImageManifest {
  formatVersion: 1;
  /** image recipe hash; also the directory name */
  hash: string;
  /** <stateDir>/images/<hash> */
  dir: string;
  /** absolute paths */
  kernel: string;
  initrd: string;
  rootfs: string;
  /** kernel release (uname -r) */
  kernelVersion: string;
  rootfsBytes: number;
  /** image-specific kernel arguments; the VMM driver appends console/TSC/hostname arguments */
  cmdline: string;
  builtAt: string;
  buildMs: number;
}

export type BuildProgress = (ev: { step: string; detail?: string; done?: boolean }) => void;

export const MANIFEST_FILE = 'manifest.json';
export const KERNEL_FILE = 'vmlinuz';
export const INITRD_FILE = 'initrd.img';
export const ROOTFS_FILE = 'rootfs.ext4';

/**
 * Reads the manifest in `dir`, with paths re-rooted at `dir` (the state directory may have
 * moved); null when it is absent, unreadable, of another format or its files are missing.
 */
export async function readManifest(dir: string): Promise<ImageManifest | null> {
  let m: ImageManifest;
  try {
    m = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8')) as ImageManifest;
  } catch {
    return null;
  }
  if (m.formatVersion !== 1) return null;
  const fixed: ImageManifest = { ...m, dir, kernel: join(dir, KERNEL_FILE), initrd: join(dir, INITRD_FILE), rootfs: join(dir, ROOTFS_FILE) };
  try {
    await Promise.all([stat(fixed.kernel), stat(fixed.initrd), stat(fixed.rootfs)]);
  } catch {
    return null;
  }
  return fixed;
}
