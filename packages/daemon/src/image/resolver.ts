/**
 * The current recipe's image, cached between creates. Resolving the recipe hashes the agent
 * bundle and guest files and asks apt-cache for the kernel (~0.6 s): too slow for every create.
 * The cache is keyed by a stat fingerprint of every input the recipe read (size, mtime, inode),
 * apt's package lists and the images directory, so a rebuilt agent, an `apt-get update` or a
 * new `kilnd image build` is seen by the next create.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readManifest, type ImageManifest } from './manifest.js';
import { GUEST_FILES, imageHash, resolveRecipe, type Recipe, type RecipeOptions } from './recipe.js';

/** apt's view of the archive: the kernel package the recipe resolves depends on it. */
const APT_STATE = ['/var/lib/apt/lists', '/var/cache/apt/pkgcache.bin'];

async function fingerprint(paths: readonly string[]): Promise<string> {
  const parts = await Promise.all(
    paths.map(async (p) => {
      const st = await stat(p).catch(() => null);
      return st ? `${p}:${st.size}:${st.mtimeMs}:${st.ino}` : `${p}:-`;
    }),
  );
  return parts.join('|');
}

function recipeInputs(r: Recipe, imagesDir: string): string[] {
  return [
    r.agentBundle.path,
    ...GUEST_FILES.map((f) => join(r.guest.dir, f)),
    r.busybox.path,
    r.node.path,
    r.guestCtl.path,
    r.ptyHelper.path,
    r.ociHelper.path,
    ...APT_STATE,
    imagesDir,
  ];
}

export class ImageResolver {
  private cached: { key: string; inputs: string[]; image: ImageManifest | null } | null = null;
  private inflight: Promise<ImageManifest | null> | null = null;

  constructor(
    private readonly stateDir: string,
    private readonly opts: RecipeOptions = {},
  ) {}

  /** The last resolved image without checking (for status displays). */
  get last(): ImageManifest | null {
    return this.cached?.image ?? null;
  }

  resolve(): Promise<ImageManifest | null> {
    this.inflight ??= this.refresh().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async refresh(): Promise<ImageManifest | null> {
    const imagesDir = join(this.stateDir, 'images');
    if (this.cached?.image && (await fingerprint(this.cached.inputs)) === this.cached.key) {
      // The image dir itself may have been pruned or damaged since.
      if (await stat(join(imagesDir, this.cached.image.hash)).catch(() => null)) return this.cached.image;
    }
    const recipe = await resolveRecipe(this.opts);
    const inputs = recipeInputs(recipe, imagesDir);
    // Fingerprint before reading the manifest: a change during the read shows as a miss next time.
    const key = await fingerprint(inputs);
    const image = await readManifest(join(imagesDir, imageHash(recipe)));
    this.cached = { key, inputs, image };
    return image;
  }
}
