/**
 * Templates from a Dockerfile or an image archive (docs/templates.md), on real VMs: the build
 * runs in a builder sandbox; the service the template starts answers at once in a new sandbox;
 * ENV and WORKDIR apply to execs; docker inside still works; a broken Dockerfile names its
 * failing step and leaves nothing behind (the previous version stays); --from an archive file.
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { DaemonFixture, integrationSkipReason } from './harness.js';
import { leftovers } from './lifecycle-leftovers.js';
import { busyboxTree, dockerArchive } from './image-archive.js';

const skip = integrationSkipReason();
const BUILD_MS = 1_800_000;

describe('kiln template build', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('tplbuild');
  const work = mkdtempSync('/tmp/kiln-it-tplbuild-in-');
  const made: string[] = [];
  let web = '';

  const tplDirs = () => readdirSync(join(fx.stateDir, 'templates'));
  const builders = (stderr: string) => [...stderr.matchAll(/==> builder: (sb-[0-9a-f]{32})/g)].map((m) => m[1] as string);

  before(async () => {
    await fx.start({ KILN_PROXY_LISTEN: '127.0.0.1:0' });
    const ctx = join(work, 'web');
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'index.html'), 'hello from the template\n');
    writeFileSync(
      join(ctx, 'Dockerfile'),
      [
        'FROM kiln/busybox',
        'ENV GREETING=hi-there',
        'WORKDIR /srv',
        'COPY index.html /srv/www/index.html',
        'RUN echo built > /srv/www/built.txt',
        'EXPOSE 8080',
        'CMD ["httpd", "-f", "-p", "8080", "-h", "/srv/www"]',
      ].join('\n') + '\n',
    );
    const r = await fx.cli(['template', 'build', 'e2e-web', ctx], { timeoutMs: BUILD_MS });
    assert.equal(r.code, 0, r.stderr);
    made.push('e2e-web');
    // Build output streamed with its steps, and the start + ready check before the snapshot.
    for (const s of ['==> builder:', 'Step 5/7 : RUN echo built', '==> export:', '==> start: httpd -f -p 8080', '==> ready: port 8080 listening', '==> snapshot']) assert.ok(r.stderr.includes(s), `${s} in:\n${r.stderr}`);
    assert.match(r.stdout.toString(), /^e2e-web version 1 built in /);
    for (const id of builders(r.stderr)) assert.deepEqual(leftovers(fx.stateDir, id), [], `builder ${id} left nothing`);
    web = (await fx.client.create({ template: 'e2e-web' })).id;
  });
  after(async () => {
    for (const name of made) await fx.client.call('DELETE', `/v1/templates/${name}`).catch(() => undefined);
    await fx.close();
    rmSync(work, { recursive: true, force: true });
  });

  fx.test('the service answers at once in a sandbox of the template, through the ports proxy too; ENV and WORKDIR apply to execs', async () => {
    // First through kilnd's sandbox proxy, before anything ran in the sandbox: the service was
    // started and checked before the snapshot, so it answers as soon as the create returned.
    const exposed = await fx.client.call<{ url: string }>('POST', `/v1/sandboxes/${web}/ports`, { port: 8080, public: true });
    const u = new URL(exposed.url);
    const viaProxy = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: Number(u.port), path: '/', headers: { host: u.host } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(viaProxy.status, 200, viaProxy.body);
    assert.equal(viaProxy.body, 'hello from the template\n');
    const page = await fx.sh(web, 'wget -qO- http://127.0.0.1:8080/');
    assert.equal(page.out, 'hello from the template\n', page.all);
    const env = await fx.sh(web, 'echo "$GREETING"; pwd; cat /srv/www/built.txt');
    assert.equal(env.out, 'hi-there\n/srv\nbuilt\n', env.all);
    const { templates } = await fx.client.call<{ templates: Array<{ name: string; version: number; source: string; sizeBytes: number }> }>('GET', '/v1/templates');
    const t = templates.find((x) => x.name === 'e2e-web');
    assert.equal(t?.source, 'image');
    assert.equal(t?.version, 1);
    assert.ok((t?.sizeBytes ?? 0) > 0);
    const ls = await fx.cli(['template', 'ls']);
    assert.match(ls.stdout.toString(), /e2e-web\s+1\s+image\s+\S+\s+\d+ MiB\s+\S+\s+shared/);
  });

  fx.test("docker inside a template's sandbox still works (the guest's dockerd, its CLI through kiln's layer)", async () => {
    const r = await fx.sh(web, 'docker info --format "{{.ServerVersion}} {{.Driver}}"');
    assert.equal(r.code, 0, r.all);
    assert.match(r.out, /^\d+\.\d+\.\S+ overlay2\n$/);
  });

  fx.test('a broken Dockerfile names its failing step, leaves nothing behind, and the previous version stays', async () => {
    const ctx = join(work, 'broken');
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM kiln/busybox\nENV A=1\nRUN echo about to fail && false\nCMD ["sh"]\n');
    const before = tplDirs().sort();
    const r = await fx.cli(['template', 'build', 'e2e-web', '-q', ctx], { timeoutMs: BUILD_MS });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /TEMPLATE_BUILD_STEP_FAILED/);
    assert.match(r.stderr, /Dockerfile step 3\/4 failed: RUN echo about to fail && false/);
    const ids = builders(r.stderr);
    assert.equal(ids.length, 1, r.stderr);
    for (const id of ids) {
      assert.deepEqual(leftovers(fx.stateDir, id), [], `builder ${id} left nothing`);
      assert.ok(!(await fx.client.list()).some((s) => s.id === id), 'the builder sandbox is gone');
    }
    assert.deepEqual(tplDirs().sort(), before, 'no template or staging files left');
    const { templates } = await fx.client.call<{ templates: Array<{ name: string; version: number }> }>('GET', '/v1/templates');
    assert.deepEqual(templates.filter((t) => t.name === 'e2e-web').map((t) => t.version), [1]);
  });

  fx.test('--from an image archive (docker save format), with a ready command', async () => {
    const tree = join(work, 'tree');
    busyboxTree(tree, ['sh', 'httpd', 'wget', 'cat', 'echo', 'true', 'pwd']);
    mkdirSync(join(tree, 'www'));
    writeFileSync(join(tree, 'www/index.html'), 'from an archive\n');
    const archive = join(work, 'image.tar');
    dockerArchive(tree, archive, { tag: 'e2e/archive:1', cmd: ['httpd', '-f', '-p', '9090', '-h', '/www'], env: ['PATH=/bin', 'FROM_ARCHIVE=yes'], workdir: '/www' });
    const r = await fx.cli(['template', 'build', 'e2e-archive', '--from', archive, '--ready-cmd', 'wget -qO- http://127.0.0.1:9090/'], { timeoutMs: BUILD_MS });
    assert.equal(r.code, 0, r.stderr);
    made.push('e2e-archive');
    assert.ok(r.stderr.includes('==> ready: `/bin/sh -c wget -qO- http://127.0.0.1:9090/` exits 0'), r.stderr);
    const id = (await fx.client.create({ template: 'e2e-archive' })).id;
    const page = await fx.sh(id, 'wget -qO- http://127.0.0.1:9090/; echo "$FROM_ARCHIVE"; pwd');
    assert.equal(page.out, 'from an archive\nyes\n/www\n', page.all);
    await fx.client.destroy(id);
    assert.ok(existsSync(join(fx.stateDir, 'templates')));
  });
});
