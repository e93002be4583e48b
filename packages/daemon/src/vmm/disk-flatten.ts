/**
 * Flattens a VM's disk into a raw file (a snapshot's disk, template/capture.ts) without root
 * reading what the VM could have written. A clone's disk is a qcow2 overlay the jailed QEMU
 * writes, header included: its backing file name and an external data file are the VMM's to
 * choose, and `qemu-img convert` as root would open whatever host file they name. So:
 *   - kilnd reads the header itself (from an O_NOFOLLOW fd, no image driver) and refuses an
 *     external data file and any backing file that is not a template's disk;
 *   - `qemu-img convert` runs in the same jail as QEMU (vmm/jail.ts: kiln-vmm, no
 *     capabilities, a mount namespace holding only the disk, that backing file and the output
 *     file root made), so a header rewritten after the check can name nothing else.
 */
import { execFile } from 'node:child_process';
import { closeSync, constants, mkdirSync, readSync, realpathSync, rmSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { promisify } from 'node:util';
import { KilnError } from '../errors.js';
import { jailCommand, type VmmIdentity } from './jail.js';
import { createVmmFile, openNoFollow, reclaimOwnership } from './vmm-dir.js';

const run = promisify(execFile);
const QCOW2_MAGIC = 0x514649fb;
/** qcow2 v3 incompatible feature bit 2: the guest data lives in an external file named in the header. */
const EXTERNAL_DATA_FILE = 1n << 2n;

export interface QcowHeader {
  virtualBytes: number;
  /** The backing file as named in the header (relative names resolved against the image's directory). */
  backing: string | null;
  externalDataFile: boolean;
}

/** The fields of a qcow2 header that decide which host files an image driver would open. */
export function readQcowHeader(path: string): QcowHeader {
  const fd = openNoFollow(path, constants.O_RDONLY);
  try {
    const h = Buffer.alloc(4096);
    const n = readSync(fd, h, 0, h.length, 0);
    if (n < 104 || h.readUInt32BE(0) !== QCOW2_MAGIC) throw new KilnError('DISK_UNSAFE', `${path} is not a qcow2 image`);
    const version = h.readUInt32BE(4);
    const offset = Number(h.readBigUInt64BE(8));
    const size = h.readUInt32BE(16);
    let backing: string | null = null;
    if (offset !== 0 && size > 0) {
      if (size > 1023) throw new KilnError('DISK_UNSAFE', `${path}: backing file name of ${size} bytes`);
      const name = Buffer.alloc(size);
      if (readSync(fd, name, 0, size, offset) !== size) throw new KilnError('DISK_UNSAFE', `${path}: truncated header`);
      backing = resolve(dirname(path), name.toString('utf8'));
    }
    const incompatible = version >= 3 ? h.readBigUInt64BE(72) : 0n;
    return { virtualBytes: Number(h.readBigUInt64BE(24)), backing, externalDataFile: (incompatible & EXTERNAL_DATA_FILE) !== 0n };
  } finally {
    closeSync(fd);
  }
}

/** The backing file a VM's overlay may name: a file inside `templatesRoot`. */
function checkedBacking(h: QcowHeader, path: string, templatesRoot: string): string | null {
  if (h.externalDataFile) throw new KilnError('DISK_UNSAFE', `${path} names an external data file; kiln never makes one`);
  if (h.backing === null) return null;
  const real = realpathSync(h.backing);
  if (!real.startsWith(`${realpathSync(templatesRoot)}/`)) {
    throw new KilnError('DISK_UNSAFE', `${path} names ${h.backing} as its backing file, which is not a template's disk`);
  }
  return h.backing;
}

export interface FlattenInput {
  src: { path: string; format: 'raw' | 'qcow2' };
  /** The raw file to write; must not exist. */
  out: string;
  /** Where a qcow2 disk's backing file must be. */
  templatesRoot: string;
  /** Jail the conversion as this user (null: QEMU itself runs unjailed, --insecure-no-jail). */
  identity: VmmIdentity | null;
}

export async function flattenDisk(i: FlattenInput): Promise<void> {
  const header = i.src.format === 'qcow2' ? readQcowHeader(i.src.path) : null;
  const backing = header ? checkedBacking(header, i.src.path, i.templatesRoot) : null;
  const argv = ['qemu-img', 'convert', '-q', '-f', i.src.format, '-O', 'raw', '-S', '4k', i.src.path, i.out];
  if (!i.identity) {
    await run(argv[0] ?? 'qemu-img', argv.slice(1));
    return;
  }
  const root = `${i.out}.jail`;
  mkdirSync(root, { mode: 0o700 });
  try {
    createVmmFile(i.out, 0, i.identity);
    const size = header?.virtualBytes ?? statSync(i.src.path).size;
    const cmd = jailCommand(
      {
        root,
        readOnly: [i.src.path, ...(backing ? [backing] : [])],
        readWrite: [i.out],
        hostDevices: { tap: null, kvm: null },
        cgroupProcs: [],
        rlimits: { fsizeBytes: size + 64 * 1024 * 1024, nofile: 64 },
        netns: null,
        identity: i.identity,
      },
      argv,
    );
    await run(cmd.file, cmd.args);
    reclaimOwnership(i.out);
  } catch (err) {
    throw err instanceof KilnError ? err : new KilnError('SNAPSHOT_FAILED', `flattening ${i.src.path} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
