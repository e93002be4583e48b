/**
 * Makes a template: cold-boot a VM whose RAM is a shared file mapping, wait until agent and
 * dockerd answer, drop the agent connection, snapshot the device state with x-ignore-shared
 * (the RAM already is the file), quit, and freeze the files read-only. Built in a temp dir
 * and renamed into place, so a crash leaves no half-template that looks valid.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runDirLayout, vmLeftovers } from '../sandbox/run-dir.js';
import { reclaimOwnership } from '../vmm/vmm-dir.js';
import { KilnError } from '../errors.js';
import type { ConnectAgent, GuestAgent, GuestImage } from '../sandbox/guest-agent.js';
import type { VmHandle, VmmDriver } from '../vmm/driver.js';
import {
  MANIFEST_FILE,
  MEM_FILE,
  SCRATCH_FILE,
  STATE_FILE,
  TEMPLATE_FORMAT,
  TEMPLATE_HOSTNAME,
  templateKey,
  type TemplateManifest,
  type TemplateShape,
} from './manifest.js';
import type { TemplateStore } from './store.js';

export interface TemplateBuildDeps {
  driver: VmmDriver;
  store: TemplateStore;
  connectAgent: ConnectAgent;
  createScratchDisk(path: string, sizeGiB: number): Promise<void>;
  vmmVersion: string;
  tcgTbSizeMiB: number;
  bootTimeoutMs?: number;
  dockerReadyTimeoutMs?: number;
}

/** kiln's static busybox as seen from a container-image template's root (guest-init mounts the guest root at /opt/kiln/sys). */
export const KILN_BUSYBOX = '/opt/kiln/sys/opt/kiln/bin/busybox';

export type TemplateProgress = (step: string, detail?: string) => void;

/** What a template built from a container image adds to a plain boot (template/from-image.ts). */
export interface BootCustomization {
  /** Its own key (every image build is a new template), not the shape's. */
  key: string;
  /** Makes the scratch disk (the image's filesystem inside it) instead of an empty one. */
  makeScratch(path: string): Promise<void>;
  /** Runs after dockerd is ready, before the snapshot (the start command and its ready check). */
  beforeSnapshot?(agent: GuestAgent): Promise<void>;
  /** How long its cold boot may take to an answering agent, and dockerd after it (a long build is no reason to give up a slow boot on a loaded host). */
  bootTimeoutMs?: number;
  /** Manifest fields to add (source, config, version, tenant). */
  manifest: Partial<TemplateManifest>;
}

export async function buildTemplate(
  deps: TemplateBuildDeps,
  image: GuestImage,
  shape: TemplateShape,
  opts: { name?: string; onProgress?: TemplateProgress; custom?: BootCustomization } = {},
): Promise<TemplateManifest> {
  const progress = opts.onProgress ?? (() => undefined);
  const caps = deps.driver.capabilities();
  const keyInput = { ...shape, imageHash: image.hash, accel: caps.accel, vmmVersion: deps.vmmVersion, tcgTbSizeMiB: deps.tcgTbSizeMiB };
  const custom = opts.custom;
  const key = custom?.key ?? templateKey(keyInput);
  const existing = await deps.store.byKey(key);
  if (existing) return existing;

  const t0 = performance.now();
  const tmp = deps.store.tempDir(key);
  await mkdir(tmp, { recursive: true, mode: 0o700 });
  let vm: VmHandle | null = null;
  let agent: GuestAgent | null = null;
  try {
    progress('scratch-disk');
    if (custom) await custom.makeScratch(join(tmp, SCRATCH_FILE));
    else await deps.createScratchDisk(join(tmp, SCRATCH_FILE), shape.diskGiB);
    progress('boot', `${shape.memoryMiB} MiB, ${shape.vcpus} vCPU, ${caps.accel}`);
    vm = await deps.driver.start({
      // Unique per build: two processes building the same template must not share a cgroup or marker.
      id: `tpl-${key.slice(0, 8)}-${randomBytes(2).toString('hex')}`,
      runDir: tmp,
      memoryMiB: shape.memoryMiB,
      vcpus: shape.vcpus,
      kernel: image.kernel,
      initrd: image.initrd,
      rootfs: image.rootfs,
      scratch: join(tmp, SCRATCH_FILE),
      cmdline: image.cmdline,
      hostname: TEMPLATE_HOSTNAME,
      memory: { file: join(tmp, MEM_FILE), mode: 'template' },
    });
    agent = await deps.connectAgent(vm.paths.agentSocket, { timeoutMs: custom?.bootTimeoutMs ?? deps.bootTimeoutMs ?? 120_000 });
    progress('docker-ready');
    await agent.dockerReady(custom?.bootTimeoutMs ?? deps.dockerReadyTimeoutMs ?? 180_000);
    // Flush the guest's dirty pages to the scratch disk so the frozen disk and RAM agree.
    // Warm the agent's code paths (V8 compiles lazily; under TCG that is slow) so that
    // every clone answers its first requests with already-compiled code.
    progress('warm-up');
    for (let i = 0; i < 3; i++) {
      // A container image's root may have no shell at all: kiln's static busybox (guest root, mounted at /opt/kiln/sys).
      const bb = custom ? [KILN_BUSYBOX] : [];
      await runQuiet(agent, [...bb, 'true']);
      await runQuiet(agent, [...bb, 'sh', '-c', 'echo warm >/dev/null']);
      await agent.health();
      await agent.stat('/');
    }
    // Warm Docker too (guest/docker-warm): a first container run, with and without a network,
    // and the binaries of a container start in the page cache, so that a clone's first
    // `docker run` starts from warm caches. An image without the script skips it, and so does a
    // template from a user's image (its root may have no shell; the script is not in its chroot).
    if (!custom) {
      progress('docker-warm-up');
      await runQuiet(agent, ['sh', '-c', 'if [ -x /opt/kiln/docker-warm ]; then /opt/kiln/docker-warm; fi']);
    }
    if (custom?.beforeSnapshot) await custom.beforeSnapshot(agent);
    await runQuiet(agent, custom ? [KILN_BUSYBOX, 'sync'] : ['sync']);
    progress('snapshot');
    // Snapshot with the agent still connected: the restored agent sits in a read on its port
    // and answers the first hello of the new host at once (no reopen polling).
    const snap = await deps.driver.snapshot(vm, { stateFile: join(tmp, STATE_FILE), ignoreShared: true });
    agent.close();
    agent = null;
    await deps.driver.stop(vm, { timeoutMs: 5000 });
    vm = null;
    for (const f of [MEM_FILE, STATE_FILE, SCRATCH_FILE]) await chmod(join(tmp, f), 0o444);
    for (const f of vmLeftovers(runDirLayout(tmp))) await rm(f, { recursive: true, force: true });
    // The jailed VMM user owned its disk and RAM file while the VM ran: a template is root's.
    reclaimOwnership(tmp);
    const sizeBytes = await allocatedBytes(tmp);
    const manifest: TemplateManifest = {
      ...keyInput,
      formatVersion: TEMPLATE_FORMAT,
      key,
      name: opts.name ?? `default-${shape.memoryMiB}m-${shape.vcpus}c-${shape.diskGiB}g`,
      source: 'boot',
      sharedMemory: true,
      parentSandbox: null,
      createdAt: new Date().toISOString(),
      buildMs: Math.round(performance.now() - t0),
      stateBytes: snap.bytes,
      sizeBytes,
      dir: deps.store.dirFor(key),
      memFile: join(deps.store.dirFor(key), MEM_FILE),
      stateFile: join(deps.store.dirFor(key), STATE_FILE),
      scratch: join(deps.store.dirFor(key), SCRATCH_FILE),
      ...custom?.manifest,
    };
    await writeFile(join(tmp, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o444 });
    try {
      await rename(tmp, deps.store.dirFor(key));
    } catch (err) {
      // Someone else (another kilnd or `kilnd image build`) finished the same template first.
      const code = (err as NodeJS.ErrnoException).code;
      const theirs = code === 'ENOTEMPTY' || code === 'EEXIST' ? await deps.store.byKey(key) : null;
      if (!theirs) throw err;
      await rm(tmp, { recursive: true, force: true });
      return theirs;
    }
    progress('done', `${manifest.buildMs} ms, device state ${snap.bytes} bytes`);
    return manifest;
  } catch (err) {
    agent?.close();
    if (vm) await deps.driver.kill(vm).catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
    throw err instanceof KilnError ? err : new KilnError('TEMPLATE_BUILD_FAILED', `template build failed: ${(err as Error).message}`, { cause: err });
  }
}

async function runQuiet(agent: GuestAgent, argv: string[]): Promise<void> {
  const r = await agent.exec({ argv }).result;
  if (r.exitCode !== 0) throw new KilnError('TEMPLATE_BUILD_FAILED', `${argv.join(' ')} failed in the template guest (exit ${r.exitCode})`);
}

/** Disk space the files directly in `dir` take (allocated blocks: the scratch disk is sparse). */
async function allocatedBytes(dir: string): Promise<number> {
  let total = 0;
  for (const f of await readdir(dir)) total += (await lstat(join(dir, f))).blocks * 512;
  return total;
}
