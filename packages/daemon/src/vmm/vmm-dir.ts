/**
 * The boundary between root (kilnd, the launcher) and the jailed QEMU on the host's disk.
 *
 * The run dir `<stateDir>/sandboxes/<id>` is root's (0700): vmm.log, the resolver's files and
 * the disks live there, and QEMU cannot create, replace or rename anything in it. QEMU gets
 * one directory of its own, `<runDir>/vmm` (VMM_DIR), the only directory bound read-write
 * into its jail, for the sockets it creates at start-up; once they exist kilnd seals it
 * (root-owned, 0711: QEMU keeps its listening sockets and can reach a socket kilnd makes
 * there, but can plant nothing more). Files QEMU writes in place (its scratch disk, a
 * template's RAM file) are made by root and handed over as files, bound one by one. A
 * snapshot's device state reaches root over a socket (vmm/migrate-out.ts): root never opens
 * a path QEMU chose. Every open here refuses a symlink (O_NOFOLLOW) and ownership changes
 * go through the opened fd (fchown/fchmod), never the path.
 */
import { closeSync, constants, fchmodSync, fchownSync, fstatSync, ftruncateSync, lstatSync, mkdirSync, openSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../errors.js';
import type { VmmIdentity } from './jail.js';

const { O_RDONLY, O_RDWR, O_WRONLY, O_CREAT, O_EXCL, O_APPEND, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;

/** Opens `path` refusing a symlink as its last component (ELOOP; libuv adds O_CLOEXEC); the caller closes the fd. */
export function openNoFollow(path: string, flags: number, mode = 0o600): number {
  try {
    return openSync(path, flags | O_NOFOLLOW, mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new KilnError('VMM_PATH_UNSAFE', `${path} is a symbolic link; kilnd does not follow links where the VMM can reach`, { cause: err });
    }
    throw err;
  }
}

function withFd<T>(path: string, flags: number, fn: (fd: number) => T, mode?: number): T {
  const fd = openNoFollow(path, flags, mode);
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Makes the VMM's directory afresh (whatever an earlier launch left there goes: rm does not
 * follow links) and gives it to the VMM user, so QEMU can create its sockets. `owner` null:
 * QEMU runs as kilnd's own user (no jail) and the directory stays kilnd's.
 */
export function prepareVmmDir(dir: string, owner: VmmIdentity | null): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { mode: 0o700 });
  if (owner) withFd(dir, O_RDONLY | O_DIRECTORY, (fd) => fchownSync(fd, owner.uid, owner.gid));
}

/**
 * Takes the VMM's directory back once QEMU has created its sockets: root-owned, 0711. QEMU
 * keeps the sockets it listens on and may connect to one root makes there (a snapshot's
 * stream), but can no longer create, replace or remove an entry: nothing it could plant
 * there later (a symlink named like a socket kilnd connects to) can appear.
 */
export function sealVmmDir(dir: string): void {
  withFd(dir, O_RDONLY | O_DIRECTORY, (fd) => {
    fchownSync(fd, 0, 0);
    fchmodSync(fd, 0o711);
  });
}

/** Hands a file root made (a disk) to the VMM user, through its fd. */
export function giveFileToVmm(path: string, owner: VmmIdentity): void {
  withFd(path, O_RDONLY, (fd) => {
    if (!fstatSync(fd).isFile()) throw new KilnError('VMM_PATH_UNSAFE', `${path} is not a regular file`);
    fchownSync(fd, owner.uid, owner.gid);
  });
}

/** Creates (if missing) a file of `bytes` for QEMU to map or write, owned by the VMM user. */
export function createVmmFile(path: string, bytes: number, owner: VmmIdentity | null): void {
  try {
    withFd(path, O_RDWR | O_CREAT | O_EXCL, (fd) => {
      ftruncateSync(fd, bytes);
      if (owner) fchownSync(fd, owner.uid, owner.gid);
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    if (owner) giveFileToVmm(path, owner);
  }
}

/** Opens the VMM's log for appending (root's file in the root-owned run dir; never a link). */
export function openVmmLog(path: string): number {
  return openNoFollow(path, O_WRONLY | O_CREAT | O_APPEND, 0o600);
}

/**
 * Gives a directory tree (a finished template) back to root, so no VMM uid owns a template.
 * Links, sockets and FIFOs are left alone; each change goes through an fd opened without
 * following links.
 */
export function reclaimOwnership(path: string): void {
  const st = lstatSync(path);
  if (!st.isFile() && !st.isDirectory()) return;
  const dir = st.isDirectory();
  withFd(path, O_RDONLY | O_NONBLOCK | (dir ? O_DIRECTORY : 0), (fd) => {
    const now = fstatSync(fd);
    if (now.ino === st.ino && (now.uid !== 0 || now.gid !== 0)) fchownSync(fd, 0, 0);
  });
  if (dir) for (const name of readdirSync(path)) reclaimOwnership(join(path, name));
}
