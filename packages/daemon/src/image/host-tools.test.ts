import { strict as assert } from 'node:assert';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { buildImage } from './builder.js';
import { MissingHostToolError } from './errors.js';
import { requireTools, toolSearchPath } from './host-tools.js';

describe('host tools', () => {
  it('names the binary and the Debian package when a tool is missing', () => {
    assert.throws(
      () => requireTools(['debootstrap'], '/nonexistent-dir'),
      (err: unknown) => {
        assert.ok(err instanceof MissingHostToolError);
        assert.equal(err.code, 'MISSING_HOST_TOOL');
        assert.equal(err.message, 'debootstrap not found: apt-get install debootstrap');
        assert.deepEqual(err.details, { tool: 'debootstrap', package: 'debootstrap' });
        return true;
      },
    );
    assert.throws(() => requireTools(['mkfs.ext4'], '/nonexistent-dir'), /mkfs.ext4 not found: apt-get install e2fsprogs/);
    assert.throws(() => requireTools(['busybox'], '/nonexistent-dir'), /apt-get install busybox-static/);
  });

  it('finds tools on the given path', () => {
    const found = requireTools(['sh'], '/usr/bin:/bin');
    assert.match(found.sh ?? '', /\/sh$/);
  });

  it('adds the sbin directories to a PATH that lacks them', () => {
    assert.deepEqual(toolSearchPath('/usr/bin').split(':'), ['/usr/bin', '/usr/local/sbin', '/usr/sbin', '/sbin']);
  });

  it('buildImage fails up front, before any work, when a tool is missing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kiln-tools-'));
    try {
      const { writeFile, readdir } = await import('node:fs/promises');
      await writeFile(join(dir, 'agent.cjs'), '// stand-in\n');
      const steps: string[] = [];
      await assert.rejects(
        buildImage({
          stateDir: join(dir, 'state'),
          agentBundle: join(dir, 'agent.cjs'),
          kernel: { name: 'linux-image-x', version: '1' },
          toolSearchPath: '/nonexistent-dir',
          onProgress: (ev) => steps.push(ev.step),
        }),
        (err: unknown) => err instanceof MissingHostToolError && /apt-get install debootstrap/.test(err.message),
      );
      assert.deepEqual([...new Set(steps)], ['recipe']);
      assert.deepEqual(await readdir(join(dir, 'state')).catch(() => []), []);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
