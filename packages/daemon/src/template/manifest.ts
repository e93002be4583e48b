/**
 * A template is a VM that booted once, waited until its agent and dockerd were ready, and
 * was snapshotted: guest RAM (a file clones map privately, copy-on-write), device state,
 * and the scratch disk at that instant (clones get a qcow2 overlay over it). Templates live
 * in <stateDir>/templates/<key>/, key = hash of everything that must match for a restore.
 */
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

export const TEMPLATE_FORMAT = 1;
export const MEM_FILE = 'mem';
export const STATE_FILE = 'state';
export const SCRATCH_FILE = 'scratch.img';
export const MANIFEST_FILE = 'manifest.json';
/** Hostname the template boots with; each clone gets its own through the agent. */
export const TEMPLATE_HOSTNAME = 'kiln-template';

export interface TemplateShape {
  memoryMiB: number;
  vcpus: number;
  diskGiB: number;
}

export interface ImageTemplateConfig {
  env: Record<string, string>;
  /** Default working directory of execs ('' = the agent's default). */
  workdir: string;
  /** Default user of execs ('' = root). */
  user: string;
  /** The start command (ENTRYPOINT + CMD, or --start-cmd); empty = none. */
  startCmd: string[];
  /** A TCP port on 127.0.0.1 that must accept a connection before the snapshot; 0 = none. */
  readyPort: number;
  /** A command (argv) that must exit 0 before the snapshot; empty = none. */
  readyCmd: string[];
}

export interface TemplateKeyInput extends TemplateShape {
  imageHash: string;
  accel: string;
  vmmVersion: string;
  tcgTbSizeMiB: number;
}

export interface TemplateManifest extends TemplateKeyInput {
  formatVersion: typeof TEMPLATE_FORMAT;
  key: string;
  name: string;
  /** `boot`: made from a fresh boot; `snapshot`: made from a running sandbox (fork); `image`: from a Dockerfile or container image. */
  source: 'boot' | 'snapshot' | 'image';
  /** source=image: what execs and the start command run with (from the image, overridable at build). */
  config?: ImageTemplateConfig;
  /** Build number of this name (1, 2, …): a rebuild makes a new version, the old one stays until the new one is ready. */
  version?: number;
  /** source=image: images pulled into the template's dockerd at build (`--pull`), so `docker run` of them needs no registry. */
  prePulled?: Array<{ image: string; digest: string | null; id: string }>;
  /** Bytes the template holds on disk (allocated blocks of its files). */
  sizeBytes?: number;
  /** For source=snapshot: RAM is inside the state file (restored by copy, not shared). */
  sharedMemory: boolean;
  parentSandbox: string | null;
  /** The tenant that snapshotted it (its own template); absent/null = shared (the admin's). */
  tenant?: string | null;
  createdAt: string;
  buildMs: number;
  stateBytes: number;
  dir: string;
  memFile: string | null;
  stateFile: string;
  scratch: string;
}

export function templateKey(k: TemplateKeyInput): string {
  const canonical = JSON.stringify({
    f: TEMPLATE_FORMAT,
    image: k.imageHash,
    mem: k.memoryMiB,
    cpus: k.vcpus,
    disk: k.diskGiB,
    accel: k.accel,
    vmm: k.vmmVersion,
    tb: k.accel === 'tcg' ? k.tcgTbSizeMiB : 0,
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** Reads a template's manifest with paths re-rooted at `dir`; null if absent or incomplete. */
export async function readTemplate(dir: string): Promise<TemplateManifest | null> {
  let m: TemplateManifest;
  try {
    m = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8')) as TemplateManifest;
  } catch {
    return null;
  }
  if (m.formatVersion !== TEMPLATE_FORMAT) return null;
  const fixed: TemplateManifest = {
    ...m,
    dir,
    memFile: m.sharedMemory ? join(dir, MEM_FILE) : null,
    stateFile: join(dir, STATE_FILE),
    scratch: join(dir, SCRATCH_FILE),
  };
  try {
    await Promise.all([stat(fixed.stateFile), stat(fixed.scratch), ...(fixed.memFile ? [stat(fixed.memFile)] : [])]);
  } catch {
    return null;
  }
  return fixed;
}
