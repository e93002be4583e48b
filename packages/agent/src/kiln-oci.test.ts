// The guest dockerd's OCI runtime front (native/kiln-oci.c, built by `npm run build`), on the
// host: as the runtime it points Docker's libnetwork-setkey prestart hook of a bundle at itself
// and execs crun with the arguments unchanged (a stand-in crun here, KILN_OCI_CRUN); as the hook
// it sends dockerd's external-key message to a stand-in socket and fails on a non-success reply.
// Real containers on Docker 26 run through it in the e2e tests (base-image.test).

import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

const BINARY = fileURLToPath(new URL('../dist/kiln-oci', import.meta.url));

const HOOK = { path: '/proc/4242/exe', args: ['libnetwork-setkey', '-exec-root=/var/run/docker', 'c0ffee', 'abc123def456'] };
const spec = (prestart: unknown[]) => JSON.stringify({ ociVersion: '1.1.0', process: { args: ['/bin/true'] }, hooks: { prestart, poststop: [{ path: '/x' }] } });

describe('kiln-oci', { skip: existsSync(BINARY) ? false : `${BINARY} not built (npm run build)` }, () => {
  let dir: string;
  let fakeCrun: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-oci-'));
    fakeCrun = join(dir, 'crun');
    // prints its argv, one per line, so the test sees what crun got
    await writeFile(fakeCrun, '#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n');
    await chmod(fakeCrun, 0o755);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const runtime = (args: string[]) => spawnSync(BINARY, args, { env: { ...process.env, KILN_OCI_CRUN: fakeCrun }, encoding: 'utf8' });

  it('as the runtime: points the setkey hook at itself on create and hands crun the same arguments', async () => {
    const bundle = join(dir, 'bundle');
    await mkdir(bundle);
    await writeFile(join(bundle, 'config.json'), spec([{ path: '/usr/bin/other-hook' }, HOOK]));
    const args = ['--root', '/run/docker/runtime-runc/moby', '--log-format', 'json', 'create', '--bundle', bundle, '--pid-file', '/p', 'c0ffee'];
    const r = runtime(args);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), args);
    const cfg = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8')) as { hooks: { prestart: Array<{ path: string; args?: string[] }> } };
    assert.deepEqual(cfg.hooks.prestart, [{ path: '/usr/bin/other-hook' }, { ...HOOK, path: '/opt/kiln/bin/kiln-oci' }]);
  });

  it('as the runtime: leaves other commands and bundles without the hook as they were', async () => {
    const bundle = join(dir, 'plain');
    await mkdir(bundle);
    const text = spec([{ path: '/proc/12/exe', args: ['something-else'] }]);
    await writeFile(join(bundle, 'config.json'), text);
    assert.equal(runtime(['create', '--bundle', bundle, 'id']).status, 0);
    assert.equal(await readFile(join(bundle, 'config.json'), 'utf8'), text);
    const withHook = join(dir, 'started');
    await mkdir(withHook);
    await writeFile(join(withHook, 'config.json'), spec([HOOK]));
    assert.equal(runtime(['start', 'id', '--bundle', withHook]).status, 0);
    assert.equal(await readFile(join(withHook, 'config.json'), 'utf8'), spec([HOOK]), 'only create rewrites');
  });

  /** Runs the hook mode against a stand-in external-key socket that replies `reply`; returns what it received. */
  async function hook(reply: string, state: string, asHook = true): Promise<{ status: number | null; stderr: string; got: string }> {
    const root = await mkdtemp(join(dir, 'exec-root-'));
    await mkdir(join(root, 'libnetwork'));
    let got = '';
    const server: Server = createServer((s) => {
      s.on('data', (b) => {
        got += b.toString();
        if (got.endsWith('\n')) s.end(reply);
      });
    });
    await new Promise<void>((r) => server.listen(join(root, 'libnetwork/abc123def456.sock'), r));
    try {
      // As a hook, the runtime execs it with the hook's args as the whole argv: argv[0] is "libnetwork-setkey".
      const args = [`-exec-root=${root}`, 'c0ffee', 'abc123def456'];
      const p = asHook
        ? spawn(BINARY, args, { argv0: 'libnetwork-setkey', stdio: ['pipe', 'ignore', 'pipe'] })
        : spawn(BINARY, ['libnetwork-setkey', ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
      let stderr = '';
      p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      p.stdin.end(state);
      const status = await new Promise<number | null>((r) => p.on('close', r));
      return { status, stderr, got };
    } finally {
      server.close();
    }
  }

  it('as the hook: sends the container id and the netns of the state pid to dockerd, as libnetwork does', async () => {
    const r = await hook('success', '{"ociVersion":"1.0.2","id":"c0ffee","status":"created","pid": 31337,"bundle":"/b"}');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.got), { ContainerID: 'c0ffee', Key: '/proc/31337/ns/net' });
  });

  it('by hand (kiln-oci libnetwork-setkey ...): the same', async () => {
    const r = await hook('success', '{"pid":99}', false);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.got), { ContainerID: 'c0ffee', Key: '/proc/99/ns/net' });
  });

  it('as the hook: fails with dockerd\'s message when it does not answer success', async () => {
    const r = await hook('failed to set key: no such sandbox', '{"pid":7}');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no such sandbox/);
  });

  describe('as containerd-shim-runc-v2 (the shared shim)', () => {
    let shimDir: string;
    let link: string;
    let fakeShim: string;
    let groups: string;
    let server: Server;
    let sock: string;
    before(async () => {
      shimDir = await mkdtemp(join(tmpdir(), 'kiln-shim-'));
      link = join(shimDir, 'containerd-shim-runc-v2');
      await symlink(BINARY, link);
      fakeShim = join(shimDir, 'real-shim');
      await writeFile(fakeShim, '#!/bin/sh\necho "real shim: $*"\n');
      await chmod(fakeShim, 0o755);
      groups = join(shimDir, 'groups');
      await mkdir(groups);
      sock = join(shimDir, 'shim.sock');
      server = createServer((c) => c.destroy());
      await new Promise<void>((r) => server.listen(sock, r));
      await writeFile(join(groups, 'moby-100000.100000'), `unix://${sock}`);
      await writeFile(join(groups, 'stale'), `unix://${join(shimDir, 'nobody.sock')}`);
    });
    after(async () => {
      await new Promise((r) => server.close(r));
      await rm(shimDir, { recursive: true, force: true });
    });

    const shim = async (args: string[]) => {
      const bundle = await mkdtemp(join(shimDir, 'bundle-'));
      const r = spawnSync(link, args, { cwd: bundle, input: 'runtime options', env: { ...process.env, KILN_SHIM_GROUPS: groups, KILN_SHIM_REAL: fakeShim }, encoding: 'utf8' });
      const address = existsSync(join(bundle, 'address')) ? await readFile(join(bundle, 'address'), 'utf8') : null;
      return { ...r, address };
    };
    const start = (ns: string) => ['-namespace', ns, '-address', '/run/containerd/containerd.sock', '-publish-binary', '/usr/bin/containerd', '-id', 'c1', 'start'];

    it('start in a namespace whose shared shim answers: its address, on stdout and in the bundle, and no new shim', async () => {
      const r = await shim(start('moby-100000.100000'));
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `unix://${sock}`);
      assert.equal(r.address, `unix://${sock}`);
    });

    it('anything else goes to the real shim with the same arguments', async () => {
      for (const [args, why] of [
        [start('other-namespace'), 'no shared shim for the namespace'],
        [start('stale'), 'the shared shim does not answer'],
        [start('../moby-100000.100000'), 'a namespace that is not a plain name'],
        [['-namespace', 'moby-100000.100000', '-id', 'c1', 'delete'], 'not a start'],
        [['-v'], 'a version query'],
      ] as const) {
        const r = await shim([...args]);
        assert.equal(r.status, 0, `${why}: ${r.stderr}`);
        assert.equal(r.stdout.trim(), `real shim: ${args.join(' ')}`, why);
        assert.equal(r.address, null, why);
      }
    });
  });
});
