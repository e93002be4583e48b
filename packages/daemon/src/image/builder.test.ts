// Integration: builds (or finds) a real image. Uses the same state directory as the test
// runner's `kilnd image build`, so with the real agent bundle it is a cache hit; the first
// build on a fresh machine takes about a minute (debootstrap).
import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage, findImage } from './builder.js';
import { ImageBuildError } from './errors.js';
import { DEFAULT_AGENT_BUNDLE, DEFAULT_GUEST_DIR, imageHash, resolveRecipe } from './recipe.js';

const isRoot = process.getuid?.() === 0;
const stateDir = process.env.KILN_TEST_IMAGE_STATE_DIR ?? process.env.KILN_STATE_DIR ?? '/var/lib/kiln';

describe('buildImage (integration)', { skip: isRoot ? false : 'needs root (debootstrap, chroot, mknod): run the tests as root' }, () => {
  let tmp: string;
  let agentBundle: string;
  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'kiln-build-'));
    agentBundle = DEFAULT_AGENT_BUNDLE;
    if (!existsSync(agentBundle)) {
      agentBundle = join(tmp, 'kiln-agent.cjs');
      await writeFile(agentBundle, '// stand-in agent for the image build test\nsetInterval(() => {}, 1 << 30);\n');
    }
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  it('builds the image once; a second call does no work and returns the same manifest', { timeout: 15 * 60_000 }, async () => {
    const first = await buildImage({ stateDir, agentBundle });
    for (const f of [first.kernel, first.initrd, first.rootfs]) assert.ok((await stat(f)).size > 0, f);
    assert.equal(first.dir, join(stateDir, 'images', first.hash));
    assert.match(first.kernelVersion, /cloud-amd64$/);
    assert.equal(first.rootfsBytes, (await stat(first.rootfs)).size);

    const steps: string[] = [];
    const t0 = Date.now();
    const again = await buildImage({ stateDir, agentBundle, onProgress: (ev) => steps.push(ev.step) });
    const ms = Date.now() - t0;
    assert.deepEqual(again, first);
    assert.deepEqual([...new Set(steps)], ['recipe', 'cached'], 'a cached build runs no build step');
    assert.ok(ms < 5000, `cached build took ${ms} ms`);
    assert.deepEqual(await findImage(stateDir, { agentBundle }), first);
  });

  it('leaves no partial image when a build fails', { timeout: 15 * 60_000 }, async () => {
    // a guest dir without the initramfs /init fails after the base layer, in the final layer
    const guestDir = join(tmp, 'broken-guest');
    await cp(DEFAULT_GUEST_DIR, guestDir, { recursive: true });
    await rm(join(guestDir, 'initramfs-init'));
    const hash = imageHash(await resolveRecipe({ agentBundle, guestDir }));
    await assert.rejects(buildImage({ stateDir, agentBundle, guestDir }), (err: unknown) => err instanceof ImageBuildError && err.code === 'IMAGE_BUILD_FAILED');
    const names = await readdir(join(stateDir, 'images'));
    assert.ok(!names.includes(hash), 'no image directory for the failed recipe');
    assert.deepEqual(names.filter((n) => n.startsWith('.tmp-')), [], 'no temporary directories left');
    assert.equal(await findImage(stateDir, { agentBundle, guestDir }), null);
  });
});
