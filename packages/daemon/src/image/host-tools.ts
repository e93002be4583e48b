/**
 * The host binaries the image build runs, each with the Debian package that provides it, so a
 * missing one fails at once with "X not found: apt-get install P" instead of deep inside a step.
 */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { MissingHostToolError } from './errors.js';

/** binary name → Debian package that ships it */
export const HOST_TOOLS: Readonly<Record<string, string>> = {
  debootstrap: 'debootstrap',
  'apt-get': 'apt',
  'apt-cache': 'apt',
  dpkg: 'dpkg',
  busybox: 'busybox-static',
  cpio: 'cpio',
  'mkfs.ext4': 'e2fsprogs',
  depmod: 'kmod',
  chroot: 'coreutils',
  du: 'coreutils',
  cp: 'coreutils',
  mknod: 'coreutils',
  ldd: 'libc-bin',
};

/** The search path: the caller's PATH plus the sbin directories a non-login shell may lack. */
export function toolSearchPath(path: string | undefined = process.env.PATH): string {
  const dirs = (path ?? '').split(delimiter).filter(Boolean);
  for (const d of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!dirs.includes(d)) dirs.push(d);
  return dirs.join(delimiter);
}

/** Absolute path of an executable `name` on `searchPath`, or null. */
export function findTool(name: string, searchPath: string): string | null {
  for (const dir of searchPath.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * Resolves every tool in `names` on `searchPath` (default: toolSearchPath()).
 * @throws MissingHostToolError for the first one missing
 */
export function requireTools(names: readonly string[], searchPath = toolSearchPath()): Record<string, string> {
  const found: Record<string, string> = {};
  for (const name of names) {
    const at = findTool(name, searchPath);
    if (!at) throw new MissingHostToolError(name, HOST_TOOLS[name] ?? name);
    found[name] = at;
  }
  return found;
}
