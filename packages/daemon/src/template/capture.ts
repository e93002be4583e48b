/**
 * Captures a running (or paused) sandbox as a template: its full device state *with* RAM
 * (a sandbox's RAM is private, so it goes into the state file) and a flattened copy of its
 * scratch disk at that instant. New sandboxes started from it see the parent's processes
 * and files as they were (a fork). The parent keeps running.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KilnError } from '../errors.js';
import type { VmHandle, VmmDriver } from '../vmm/driver.js';
import { MANIFEST_FILE, SCRATCH_FILE, STATE_FILE, TEMPLATE_FORMAT, type TemplateManifest, type TemplateShape } from './manifest.js';
import type { TemplateStore } from './store.js';

const run = promisify(execFile);

export interface CaptureInput {
  driver: VmmDriver;
  store: TemplateStore;
  vm: VmHandle;
  shape: TemplateShape;
  imageHash: string;
  vmmVersion: string;
  tcgTbSizeMiB: number;
  scratch: { path: string; format: 'raw' | 'qcow2' };
  name: string;
  parentSandbox: string;
  /** The tenant snapshotting (its own template), or null (the admin's: shared). */
  tenant?: string | null;
  /** Resume the VM afterwards (it was running). */
  resume: boolean;
}

export async function captureSandbox(c: CaptureInput): Promise<TemplateManifest> {
  const t0 = performance.now();
  const key = `snap-${randomBytes(6).toString('hex')}`;
  const tmp = c.store.tempDir(key);
  await mkdir(tmp, { recursive: true, mode: 0o700 });
  let resumed = !c.resume;
  try {
    const snap = await c.driver.snapshot(c.vm, { stateFile: join(tmp, STATE_FILE), ignoreShared: false });
    // Block devices are flushed and inactive once the migration completed: the disk is
    // consistent with the saved RAM. Flatten it (a clone's disk is a qcow2 over its template's).
    // The disk, header included, is the VMM's to write: the driver reads it jailed.
    if (c.driver.flattenDisk) await c.driver.flattenDisk(c.scratch, join(tmp, SCRATCH_FILE), c.store.root);
    else await run('qemu-img', ['convert', '-q', '-f', c.scratch.format, '-O', 'raw', '-S', '4k', c.scratch.path, join(tmp, SCRATCH_FILE)]);
    if (c.resume) {
      await c.driver.resume(c.vm);
      resumed = true;
    }
    for (const f of [STATE_FILE, SCRATCH_FILE]) await chmod(join(tmp, f), 0o444);
    const dir = c.store.dirFor(key);
    const manifest: TemplateManifest = {
      ...c.shape,
      imageHash: c.imageHash,
      accel: c.vm.accel,
      vmmVersion: c.vmmVersion,
      tcgTbSizeMiB: c.tcgTbSizeMiB,
      formatVersion: TEMPLATE_FORMAT,
      key,
      name: c.name,
      source: 'snapshot',
      sharedMemory: false,
      parentSandbox: c.parentSandbox,
      ...(c.tenant ? { tenant: c.tenant } : {}),
      createdAt: new Date().toISOString(),
      buildMs: Math.round(performance.now() - t0),
      stateBytes: snap.bytes,
      dir,
      memFile: null,
      stateFile: join(dir, STATE_FILE),
      scratch: join(dir, SCRATCH_FILE),
    };
    await writeFile(join(tmp, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o444 });
    await rename(tmp, dir);
    return manifest;
  } catch (err) {
    if (!resumed) await c.driver.resume(c.vm).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
    throw err instanceof KilnError ? err : new KilnError('SNAPSHOT_FAILED', `snapshot of ${c.parentSandbox} failed: ${(err as Error).message}`, { cause: err });
  }
}
