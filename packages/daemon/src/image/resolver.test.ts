import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { INITRD_FILE, KERNEL_FILE, MANIFEST_FILE, ROOTFS_FILE } from './manifest.js';
import { DEFAULT_GUEST_DIR, recipeHash, type RecipeOptions } from './recipe.js';
import { ImageResolver } from './resolver.js';

const kernel = { name: 'linux-image-6.1.0-56-cloud-amd64', version: '6.1.192-2' };

/** A minimal image dir that readManifest accepts. */
async function fakeImage(stateDir: string, hash: string): Promise<void> {
  const dir = join(stateDir, 'images', hash);
  await mkdir(dir, { recursive: true });
  for (const f of [KERNEL_FILE, INITRD_FILE, ROOTFS_FILE]) await writeFile(join(dir, f), 'x');
  await writeFile(join(dir, MANIFEST_FILE), JSON.stringify({ formatVersion: 1, hash, kernelVersion: '6.1.0-56-cloud-amd64' }));
}

describe('ImageResolver', () => {
  let dir: string;
  let stateDir: string;
  let opts: RecipeOptions;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-resolver-'));
    stateDir = join(dir, 'state');
    await mkdir(join(stateDir, 'images'), { recursive: true });
    await writeFile(join(dir, 'agent.cjs'), 'agent v1');
    await writeFile(join(dir, 'guestctl'), 'helper v1');
    await writeFile(join(dir, 'kiln-pty'), 'pty helper v1');
    await writeFile(join(dir, 'kiln-oci'), 'oci helper v1');
    await cp(DEFAULT_GUEST_DIR, join(dir, 'guest'), { recursive: true });
    opts = { agentBundle: join(dir, 'agent.cjs'), guestCtl: join(dir, 'guestctl'), ptyHelper: join(dir, 'kiln-pty'), ociHelper: join(dir, 'kiln-oci'), guestDir: join(dir, 'guest'), kernel };
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('finds a newly built image, then follows a changed input to the image it needs', async () => {
    const r = new ImageResolver(stateDir, opts);
    assert.equal(await r.resolve(), null, 'nothing built yet');
    const h1 = await recipeHash(opts);
    await fakeImage(stateDir, h1);
    assert.equal((await r.resolve())?.hash, h1, 'a new image dir is seen');
    assert.equal((await r.resolve())?.hash, h1, 'cached');
    assert.equal(r.last?.hash, h1);

    // A rebuilt agent (new bytes, new mtime) means a different recipe, whose image is not built.
    await writeFile(join(dir, 'agent.cjs'), 'agent v2');
    await utimes(join(dir, 'agent.cjs'), new Date(), new Date(Date.now() + 5000));
    assert.equal(await r.resolve(), null, 'the old image is not handed out for a new agent');
    const h2 = await recipeHash(opts);
    assert.notEqual(h2, h1);
    await fakeImage(stateDir, h2);
    assert.equal((await r.resolve())?.hash, h2);
  });

  it('notices a pruned image dir', async () => {
    const r = new ImageResolver(stateDir, opts);
    const h = (await r.resolve())?.hash;
    assert.ok(h);
    await rm(join(stateDir, 'images', h), { recursive: true });
    assert.equal(await r.resolve(), null);
  });

  it('concurrent calls share one resolution', async () => {
    const r = new ImageResolver(stateDir, opts);
    const [a, b] = [r.resolve(), r.resolve()];
    assert.equal(a, b);
    await a;
  });
});
