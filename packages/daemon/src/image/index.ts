/** Guest image: build (`kilnd image build`), find, and per-VM scratch disks. */
export { buildImage, findImage, type BuildImageOptions } from './builder.js';
export { createScratchDisk, MAX_SCRATCH_GIB, SCRATCH_LABEL } from './scratch-disk.js';
export { recipeHash, resolveRecipe, imageHash, baseKey, type Recipe, type RecipeOptions } from './recipe.js';
export { type ImageManifest, type BuildProgress } from './manifest.js';
export { ImageBuildError, MissingHostToolError, AgentBundleMissingError } from './errors.js';
export { pruneImages, DEFAULT_KEEP_IMAGES } from './prune.js';
export { HOST_TOOLS, requireTools } from './host-tools.js';
