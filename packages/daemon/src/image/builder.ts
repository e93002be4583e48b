/**
 * `kilnd image build`: builds the guest image for the current recipe into
 * <stateDir>/images/<hash>, reusing the cached base layer (debootstrap + kernel) in
 * <stateDir>/images/cache/base-<key>. Each layer is built in a temporary directory and
 * renamed into place, so a failed build leaves nothing partial; with nothing changed a build
 * returns the existing manifest at once.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toKilnError } from '../errors.js';
import { pidExists } from '../util/proc.js';
import { ImageBuildError } from './errors.js';
import { requireTools, toolSearchPath } from './host-tools.js';
import { buildInitramfs } from './initramfs.js';
import { fetchKernel } from './kernel.js';
import { INITRD_FILE, KERNEL_FILE, MANIFEST_FILE, ROOTFS_FILE, readManifest, type BuildProgress, type ImageManifest } from './manifest.js';
import { DEFAULT_MIRROR, baseKey, imageHash, resolveRecipe, type Recipe, type RecipeOptions } from './recipe.js';
import { DEFAULT_KEEP_IMAGES, pruneImages } from './prune.js';
import { addKilnFiles, buildBaseRootfs, linkCopyTree, makeRootExt4 } from './rootfs.js';

export interface BuildImageOptions extends RecipeOptions {
  /** kiln's state directory; images go to <stateDir>/images */
  stateDir: string;
  onProgress?: BuildProgress;
  /** rebuild the final image even when it exists (the base layer is still reused) */
  force?: boolean;
  /** Debian mirror for debootstrap (default DEFAULT_MIRROR; not part of the recipe hash) */
  mirror?: string;
  /** where the host tools are looked for before building (default: PATH plus the sbin dirs) */
  toolSearchPath?: string;
  /** how many built images to keep, the new one included (default DEFAULT_KEEP_IMAGES = 3) */
  keepImages?: number;
}

const BUILD_TOOLS = ['debootstrap', 'apt-get', 'dpkg', 'depmod', 'busybox', 'cpio', 'mkfs.ext4', 'chroot', 'cp', 'du', 'ldd'];

const imagesDir = (stateDir: string): string => join(stateDir, 'images');

/** The current recipe's built image in `stateDir`, or null. */
export async function findImage(stateDir: string, opts: RecipeOptions = {}): Promise<ImageManifest | null> {
  const recipe = await resolveRecipe(opts);
  return readManifest(join(imagesDir(stateDir), imageHash(recipe)));
}

const inflight = new Map<string, Promise<ImageManifest>>();

/** Builds (or finds) the image for the current recipe. Concurrent calls for one image share a build. */
export async function buildImage(opts: BuildImageOptions): Promise<ImageManifest> {
  const progress: BuildProgress = opts.onProgress ?? (() => undefined);
  progress({ step: 'recipe' });
  const recipe = await resolveRecipe(opts);
  const hash = imageHash(recipe);
  const finalDir = join(imagesDir(opts.stateDir), hash);
  progress({ step: 'recipe', detail: `image ${hash}, kernel ${recipe.kernel.name} ${recipe.kernel.version}`, done: true });
  if (!opts.force) {
    const existing = await readManifest(finalDir);
    if (existing) {
      progress({ step: 'cached', detail: existing.dir, done: true });
      return existing;
    }
  }
  const key = `${finalDir}:${opts.force ? 'force' : ''}`;
  let p = inflight.get(key);
  if (!p) {
    p = build(recipe, hash, finalDir, opts, progress).finally(() => inflight.delete(key));
    inflight.set(key, p);
  }
  return p;
}

async function build(recipe: Recipe, hash: string, finalDir: string, opts: BuildImageOptions, progress: BuildProgress): Promise<ImageManifest> {
  const started = Date.now();
  requireTools(BUILD_TOOLS, opts.toolSearchPath ?? toolSearchPath());
  const images = imagesDir(opts.stateDir);
  await mkdir(join(images, 'cache'), { recursive: true });
  await removeStaleTemps(images);
  await removeStaleTemps(join(images, 'cache'));

  const base = await ensureBase(recipe, opts, progress);
  const tmp = join(images, `.tmp-${hash}-${process.pid}-${randomBytes(3).toString('hex')}`);
  try {
    await mkdir(tmp);
    const release = (await readFile(join(base, 'kernel-release'), 'utf8')).trim();
    await copyFile(join(base, KERNEL_FILE), join(tmp, KERNEL_FILE));

    progress({ step: 'initramfs', detail: recipe.initramfsModules.join(' ') });
    const loaded = await buildInitramfs({
      stagingDir: join(tmp, '.initramfs'),
      out: join(tmp, INITRD_FILE),
      modulesDir: join(base, 'rootfs/usr/lib/modules', release),
      release,
      modules: recipe.initramfsModules,
      busybox: recipe.busybox.path,
      initScript: join(recipe.guest.dir, 'initramfs-init'),
    });
    await rm(join(tmp, '.initramfs'), { recursive: true, force: true });
    progress({ step: 'initramfs', detail: `${loaded.length} modules`, done: true });

    progress({ step: 'rootfs', detail: 'agent, node, guest init' });
    const tree = join(tmp, '.tree');
    await linkCopyTree(join(base, 'rootfs'), tree);
    await addKilnFiles({ dir: tree, agentBundle: recipe.agentBundle.path, guestCtl: recipe.guestCtl.path, ptyHelper: recipe.ptyHelper.path, ociHelper: recipe.ociHelper.path, nodeBinary: recipe.node.path, busybox: recipe.busybox.path, guestDir: recipe.guest.dir, npmDir: recipe.npm?.dir ?? null });
    progress({ step: 'rootfs', done: true });

    progress({ step: 'ext4', detail: ROOTFS_FILE });
    const rootfsBytes = await makeRootExt4(tree, join(tmp, ROOTFS_FILE));
    await rm(tree, { recursive: true, force: true });
    progress({ step: 'ext4', detail: `${Math.round(rootfsBytes / 2 ** 20)} MiB`, done: true });

    const manifest: ImageManifest = {
      formatVersion: 1,
      hash,
      dir: finalDir,
      kernel: join(finalDir, KERNEL_FILE),
      initrd: join(finalDir, INITRD_FILE),
      rootfs: join(finalDir, ROOTFS_FILE),
      kernelVersion: release,
      rootfsBytes,
      cmdline: recipe.cmdline,
      builtAt: new Date().toISOString(),
      buildMs: Date.now() - started,
    };
    await writeFile(join(tmp, 'recipe.json'), JSON.stringify({ ...recipe, baseKey: baseKey(recipe) }, null, 2) + '\n');
    await writeFile(join(tmp, MANIFEST_FILE), JSON.stringify(manifest, null, 2) + '\n');
    if (opts.force) await rm(finalDir, { recursive: true, force: true });
    await rename(tmp, finalDir).catch(async (err: NodeJS.ErrnoException) => {
      // another build of the same recipe won the race: its image is as good as ours
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      await rm(tmp, { recursive: true, force: true });
    });
    const pruned = await pruneImages(opts.stateDir, { keep: opts.keepImages ?? DEFAULT_KEEP_IMAGES, pinned: [hash] });
    if (pruned.length) progress({ step: 'prune', detail: `removed superseded images ${pruned.join(' ')}`, done: true });
    progress({ step: 'done', detail: finalDir, done: true });
    return (await readManifest(finalDir)) ?? manifest;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err instanceof ImageBuildError ? err : wrap(err);
  }
}

/** The base layer directory for `recipe` (rootfs/, vmlinuz, kernel-release), building it when absent. */
async function ensureBase(recipe: Recipe, opts: BuildImageOptions, progress: BuildProgress): Promise<string> {
  const cache = join(imagesDir(opts.stateDir), 'cache');
  const key = baseKey(recipe);
  const dir = join(cache, `base-${key}`);
  try {
    await readFile(join(dir, 'kernel-release'), 'utf8');
    progress({ step: 'base', detail: `cached base layer ${key}`, done: true });
    return dir;
  } catch {
    // not built yet
  }
  const tmp = join(cache, `.tmp-base-${key}-${process.pid}-${randomBytes(3).toString('hex')}`);
  try {
    await mkdir(tmp);
    progress({ step: 'kernel', detail: `${recipe.kernel.name} ${recipe.kernel.version}` });
    const kernel = await fetchKernel(recipe.kernel, join(cache, 'debs'), join(tmp, '.kernel'));
    await copyFile(kernel.vmlinuz, join(tmp, KERNEL_FILE));
    progress({ step: 'kernel', detail: kernel.release, done: true });

    const step = (s: string, detail?: string): void => progress({ step: s, detail });
    await buildBaseRootfs(
      {
        dir: join(tmp, 'rootfs'),
        suite: recipe.suite,
        mirror: opts.mirror ?? DEFAULT_MIRROR,
        packages: recipe.packages,
        debCache: join(cache, 'debs', recipe.suite),
        modulesDir: kernel.modulesDir,
        release: kernel.release,
      },
      step,
    );
    await rm(join(tmp, '.kernel'), { recursive: true, force: true });
    await writeFile(join(tmp, 'kernel-release'), kernel.release + '\n');
    await rename(tmp, dir).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      await rm(tmp, { recursive: true, force: true });
    });
    // older base layers are build cache only (images hold their own copies): drop them
    for (const name of await readdir(cache)) {
      if (name.startsWith('base-') && name !== `base-${key}`) await rm(join(cache, name), { recursive: true, force: true });
    }
    progress({ step: 'base', detail: `base layer ${key}`, done: true });
    return dir;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Removes .tmp-* directories left by builds whose process is gone. */
async function removeStaleTemps(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const pid = /^\.tmp-.*-(\d+)-[0-9a-f]{6}$/.exec(name)?.[1];
    if (!pid || pidExists(Number(pid))) continue;
    await rm(join(dir, name), { recursive: true, force: true });
  }
}

function wrap(err: unknown): Error {
  const k = toKilnError(err, 'IMAGE_BUILD_FAILED');
  return k.code === 'IMAGE_BUILD_FAILED' ? new ImageBuildError(k.message, { cause: err }) : k;
}
