import { strict as assert } from 'node:assert';
import { cp, mkdtemp, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AgentBundleMissingError } from './errors.js';
import { DEFAULT_GUEST_DIR, baseKey, recipeHash, resolveRecipe, type RecipeOptions } from './recipe.js';

// A fixed kernel package keeps these tests off apt-cache.
const kernel = { name: 'linux-image-6.1.0-56-cloud-amd64', version: '6.1.192-2' };

describe('recipe hash', () => {
  let dir: string;
  let opts: RecipeOptions;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-recipe-'));
    await writeFile(join(dir, 'agent.cjs'), 'console.log("agent v1")\n');
    await writeFile(join(dir, 'guestctl'), 'helper v1');
    await writeFile(join(dir, 'kiln-pty'), 'pty helper v1');
    await writeFile(join(dir, 'kiln-oci'), 'oci helper v1');
    await cp(DEFAULT_GUEST_DIR, join(dir, 'guest'), { recursive: true });
    opts = { agentBundle: join(dir, 'agent.cjs'), guestCtl: join(dir, 'guestctl'), ptyHelper: join(dir, 'kiln-pty'), ociHelper: join(dir, 'kiln-oci'), guestDir: join(dir, 'guest'), kernel };
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('is stable for the same inputs', async () => {
    const a = await recipeHash(opts);
    const b = await recipeHash({ ...opts });
    assert.match(a, /^[0-9a-f]{16}$/);
    assert.equal(a, b);
  });

  it('changes with the agent bundle bytes', async () => {
    const before = await recipeHash(opts);
    await writeFile(join(dir, 'agent.cjs'), 'console.log("agent v2")\n');
    assert.notEqual(await recipeHash(opts), before);
  });

  it('changes with the guest helper binary', async () => {
    const before = await recipeHash(opts);
    await writeFile(join(dir, 'guestctl'), 'helper v2');
    assert.notEqual(await recipeHash(opts), before);
  });

  it('changes with a guest script, but not the base layer key', async () => {
    const r1 = await resolveRecipe(opts);
    const h1 = await recipeHash(opts);
    await appendFile(join(dir, 'guest/guest-init'), '# changed\n');
    const r2 = await resolveRecipe(opts);
    assert.notEqual(await recipeHash(opts), h1);
    assert.equal(baseKey(r2), baseKey(r1));
  });

  it('changes with the package list and the kernel version, and so does the base key', async () => {
    const r = await resolveRecipe(opts);
    const h = await recipeHash(opts);
    const withPkg = await resolveRecipe({ ...opts, packages: [...r.packages, 'strace'] });
    assert.notEqual(baseKey(withPkg), baseKey(r));
    assert.notEqual(await recipeHash({ ...opts, packages: [...r.packages, 'strace'] }), h);
    assert.notEqual(await recipeHash({ ...opts, kernel: { ...kernel, version: '6.1.999-1' } }), h);
  });

  it('fails with AGENT_BUNDLE_MISSING when the bundle is not built', async () => {
    await assert.rejects(recipeHash({ ...opts, agentBundle: join(dir, 'nope.cjs') }), (err: unknown) => {
      assert.ok(err instanceof AgentBundleMissingError);
      assert.equal(err.code, 'AGENT_BUNDLE_MISSING');
      assert.match(err.message, /npm run build/);
      return true;
    });
  });
});
