// The guest dockerd's OCI runtime front (native/kiln-oci.c, built by `npm run build`), on the
// host: as the runtime it points Docker's libnetwork-setkey prestart hook of a bundle at itself
// and execs crun with the arguments unchanged (a stand-in crun here, KILN_OCI_CRUN); as the hook
// it sends dockerd's external-key message to a stand-in socket and fails on a non-success reply.
// Real containers on Docker 26 run through it in the e2e tests (base-image.test).

import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
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
});
