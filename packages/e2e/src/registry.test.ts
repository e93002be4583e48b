/**
 * The private registry on a real kilnd and real microVMs: an image built offline (FROM scratch,
 * a static busybox) is pushed with `kiln image push` and pulled with plain `docker pull
 * registry.kiln.internal/…` from two sandboxes of two tenants; a tenant cannot pull another's
 * private image; a sandbox whose policy is `none` cannot reach the registry at all; the
 * forwarders end with their sandboxes. A template pre-pulls a tenant's image (`--pull`): its
 * sandboxes run it with no registry in reach; a failed pre-pull (another tenant's image, a
 * missing one) fails the build naming the image and leaves nothing behind.
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { DaemonFixture, integrationSkipReason } from './harness.js';
import { busyboxTree, dockerArchive } from './image-archive.js';
import { leftovers } from './lifecycle-leftovers.js';

const skip = integrationSkipReason() ?? (readdirSync('/usr/bin').includes('docker-registry') ? null : 'docker-registry is not installed (scripts/setup.sh)');

/** A docker-archive of a FROM-scratch image: a static busybox that prints a greeting. */
function tinyImage(dir: string): string {
  mkdirSync(join(dir, 'root', 'bin'), { recursive: true });
  copyFileSync('/usr/bin/busybox', join(dir, 'root', 'bin', 'busybox'));
  execFileSync('tar', ['-c', '-f', join(dir, 'layer.tar'), '-C', join(dir, 'root'), '.']);
  const diff = createHash('sha256').update(readFileSync(join(dir, 'layer.tar'))).digest('hex');
  const config = { architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/busybox', 'echo', 'hello-from-registry'] }, rootfs: { type: 'layers', diff_ids: [`sha256:${diff}`] } };
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['tiny:1'], Layers: ['layer.tar'] }]));
  execFileSync('tar', ['-c', '-f', join(dir, 'image.tar'), '-C', dir, 'manifest.json', 'config.json', 'layer.tar']);
  return join(dir, 'image.tar');
}

describe('private registry', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('registry');
  const work = mkdtempSync(join(tmpdir(), 'kiln-it-registry-'));
  const cert = join(work, 'cert.pem');
  let port = 0;
  const ids: Record<string, string> = {};
  const t = (name: string, fn: () => Promise<void>) => fx.test(name, fn);

  /** Creates a sandbox as a tenant (over TCP with its key): the registry knows it by its owner. */
  const createAs = (key: string, body: unknown): Promise<string> =>
    new Promise((resolve, reject) => {
      const payload = Buffer.from(JSON.stringify(body));
      const req = request(
        { host: '127.0.0.1', port, method: 'POST', path: '/v1/sandboxes', ca: readFileSync(cert), servername: 'localhost', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'content-length': String(payload.length) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => (text += c));
          res.on('end', () => (res.statusCode === 201 ? resolve((JSON.parse(text) as { id: string }).id) : reject(new Error(`create as tenant: ${res.statusCode} ${text}`))));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  const newKey = async (tenant: string): Promise<string> => {
    const r = await fx.cli(['key', 'create', '--tenant', tenant]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.toString().trim();
  };
  type BuildEvent = { type: string; step?: string; detail?: string; template?: { name: string; prePulled: Array<{ image: string; digest: string | null; id: string }> }; error?: { code: string; message: string; details?: { image?: string } } };
  /** `POST /v1/templates/build` as a tenant (its key over TCP): every NDJSON event of the build. */
  const buildAs = (key: string, query: Record<string, string>, body: Buffer): Promise<BuildEvent[]> =>
    new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, method: 'POST', path: `/v1/templates/build?${new URLSearchParams(query).toString()}`, ca: readFileSync(cert), servername: 'localhost', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/octet-stream', 'content-length': String(body.length) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => (text += c));
          res.on('end', () => (res.statusCode === 200 ? resolve(text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as BuildEvent)) : reject(new Error(`build as tenant: ${res.statusCode} ${text}`))));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  /** `docker pull`, tried again while the guest dockerd's resolver still has the template's resolv.conf (re-read at most every 5 s). */
  const pull = (id: string, ref: string) =>
    fx.sh(id, `for i in 1 2 3 4; do out=$(docker pull ${ref} 2>&1) && { echo "$out"; exit 0; }; case "$out" in *"lookup registry.kiln.internal"*|*"x509"*) sleep 3;; *) echo "$out"; exit 1;; esac; done; echo "$out"; exit 1`);
  /** From the guest: whether the gateway's port 443 (the registry) accepts a connection. */
  const probe443 = (id: string) =>
    fx.sh(id, `gw=$(ip route show default | awk '{print $3}'); if timeout 6 bash -c "exec 3<>/dev/tcp/$gw/443"; then echo open; else echo closed; fi`);

  before(async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', join(work, 'key.pem'), '-out', cert], { stdio: 'ignore' });
    await fx.start({ KILN_LISTEN: '127.0.0.1:0', KILN_TLS_CERT: cert, KILN_TLS_KEY: join(work, 'key.pem') });
    const line = readFileSync(fx.logPath, 'utf8').split('\n').find((l) => l.includes('"kilnd listening"'));
    port = (JSON.parse(line ?? '{}') as { tcp?: { port?: number } }).tcp?.port ?? 0;
    assert.ok(port > 0);
  });
  /** The templates this file builds (in the templates dir kilnd shares with /var/lib/kiln: removed before and after). */
  const removeTemplates = async () => {
    for (const [name, tenant] of [['e2e-prepull', 'alpha'], ['e2e-prepull-b', 'beta'], ['e2e-prepull-c', null]] as const) {
      await fx.client.call('DELETE', `/v1/templates/${name}${tenant ? `?tenant=${tenant}` : ''}`).catch(() => undefined);
    }
  };
  after(async () => {
    if (port) await removeTemplates();
    await fx.close();
    rmSync(work, { recursive: true, force: true });
  });

  t('kilnd runs the registry on loopback, storage under its state dir; kiln image push pushes an archive', async () => {
    const config = readFileSync(join(fx.stateDir, 'registry', 'config.yml'), 'utf8');
    assert.match(config, /addr: "127\.0\.0\.1:\d+"/);
    assert.match(config, new RegExp(`rootdirectory: "${fx.stateDir}/registry/data"`));
    assert.doesNotMatch(config, /proxy:/, 'no pull-through cache unless configured');
    const archive = tinyImage(join(work, 'img'));
    for (const name of ['library/tiny:1', 'alpha/secret:1']) {
      const r = await fx.cli(['image', 'push', archive, name]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString().trim(), `registry.kiln.internal/${name}`);
    }
    const ls = await fx.cli(['image', 'ls']);
    assert.deepEqual(ls.stdout.toString().trim().split('\n').sort(), ['registry.kiln.internal/alpha/secret', 'registry.kiln.internal/library/tiny']);
  });

  t('two sandboxes of two tenants pull the shared image with plain docker pull and run it', async () => {
    const [keyA, keyB] = [await newKey('alpha'), await newKey('beta')];
    [ids.alpha, ids.beta] = await Promise.all([createAs(keyA, {}), createAs(keyB, {})]);
    for (const id of [ids.alpha, ids.beta]) {
      const p = await pull(id, 'registry.kiln.internal/library/tiny:1');
      assert.equal(p.code, 0, p.all);
      assert.match(p.out, /Downloaded newer image for registry\.kiln\.internal\/library\/tiny:1/);
    }
    const run = await fx.sh(ids.beta ?? '', 'docker run --rm registry.kiln.internal/library/tiny:1');
    assert.equal(run.out.trim(), 'hello-from-registry', run.all);
  });

  t("one tenant cannot pull another's private image; its owner can", async () => {
    const own = await pull(ids.alpha ?? '', 'registry.kiln.internal/alpha/secret:1');
    assert.equal(own.code, 0, own.all);
    // An image of a sandbox's dockerd, pushed from there (docker save in the sandbox).
    const fromSb = await fx.cli(['image', 'push', '--from-sandbox', ids.alpha ?? '', 'registry.kiln.internal/alpha/secret:1', 'alpha/copied:2']);
    assert.equal(fromSb.code, 0, fromSb.stderr);
    assert.equal(fromSb.stdout.toString().trim(), 'registry.kiln.internal/alpha/copied:2');
    const other = await pull(ids.beta ?? '', 'registry.kiln.internal/alpha/secret:1');
    assert.notEqual(other.code, 0, other.all);
    assert.match(other.out, /denied|not allowed/i, other.all);
    assert.doesNotMatch(other.out, /Pull complete/);
  });

  t('a sandbox whose policy is none cannot reach the registry; the default policy can', async () => {
    ids.none = (await fx.client.create({ network: { preset: 'none' } })).id;
    const closed = await probe443(ids.none);
    assert.equal(closed.out.trim(), 'closed', closed.all);
    const open = await probe443(ids.alpha ?? '');
    assert.equal(open.out.trim(), 'open', open.all);
    const p = await fx.sh(ids.none, 'timeout 60 docker pull registry.kiln.internal/library/tiny:1 2>&1');
    assert.notEqual(p.code, 0);
    assert.doesNotMatch(p.out, /Pull complete/);
  });

  t('a template pre-pulls its tenant\'s image: a sandbox of it whose policy is none runs it; another tenant\'s or a missing image fails the build, leaving nothing', async () => {
    const [keyA, keyB] = [await newKey('alpha'), await newKey('beta')];
    const tree = join(work, 'tpl-root');
    busyboxTree(tree, ['sh', 'cat', 'echo', 'true', 'grep']);
    const archive = join(work, 'tpl-root.tar');
    dockerArchive(tree, archive, { tag: 'e2e/prepull-root:1', cmd: ['sh'], env: ['PATH=/usr/local/bin:/bin'] });
    const body = readFileSync(archive);
    await removeTemplates();
    const tplDirs = () => readdirSync(join(fx.stateDir, 'templates')).sort();
    const nameOf = (dir: string) => (JSON.parse(readFileSync(join(fx.stateDir, 'templates', dir, 'manifest.json'), 'utf8')) as { name: string }).name;
    const secret = 'registry.kiln.internal/alpha/secret:1';
    const ok = await buildAs(keyA, { name: 'e2e-prepull', from: 'archive', startCmd: '[]', pull: JSON.stringify([secret]) }, body);
    const done = ok.find((e) => e.type === 'done');
    assert.ok(done?.template, JSON.stringify(ok.filter((e) => e.type !== 'log'), null, 1));
    // A line per pull with its result, then the load into the template's dockerd before the snapshot.
    assert.ok(ok.some((e) => e.step === 'pre-pull' && new RegExp(`^${secret}: pulled sha256:[0-9a-f]{64}$`).test(e.detail ?? '')), JSON.stringify(ok));
    assert.ok(ok.some((e) => e.type === 'log' && /Loaded image: registry\.kiln\.internal\/alpha\/secret:1/.test((e as { line?: string }).line ?? '')));
    assert.equal(done.template.prePulled.length, 1);
    assert.equal(done.template.prePulled[0]?.image, secret);
    assert.match(done.template.prePulled[0]?.digest ?? '', /^sha256:[0-9a-f]{64}$/);
    ids.prepulled = await createAs(keyA, { template: 'e2e-prepull', network: { preset: 'none' } });
    const run = await fx.sh(ids.prepulled, `docker run --rm ${secret}; docker images --format '{{.Repository}}:{{.Tag}}'`);
    assert.equal(run.code, 0, run.all);
    assert.equal(run.out, `hello-from-registry\n${secret}\n`, run.all);

    // Failures: beta may not read alpha's repository (through the API), and a missing image (the CLI, as the admin).
    const before = tplDirs();
    const [denied, missing] = await Promise.all([
      buildAs(keyB, { name: 'e2e-prepull-b', from: 'archive', startCmd: '[]', pull: JSON.stringify([secret]) }, body),
      fx.cli(['template', 'build', 'e2e-prepull-c', '--from', archive, '--start-cmd', '', '--pull', 'registry.kiln.internal/alpha/nope:1'], { timeoutMs: 1_200_000 }),
    ]);
    const err = denied.find((e) => e.type === 'error')?.error;
    assert.equal(err?.code, 'TEMPLATE_PULL_FAILED', JSON.stringify(denied));
    assert.equal(err.details?.image, secret);
    assert.match(err.message, /^pre-pull of registry\.kiln\.internal\/alpha\/secret:1 failed: .*not allowed for tenant beta/);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /TEMPLATE_PULL_FAILED/);
    assert.match(missing.stderr, /pre-pull of registry\.kiln\.internal\/alpha\/nope:1 failed: .*(manifest unknown|not found)/);
    const builderIds = [...denied.filter((e) => e.step === 'builder').map((e) => e.detail ?? ''), ...missing.stderr.split('\n').map((l) => /^==> builder: (sb-\S+)$/.exec(l)?.[1] ?? '')].filter((d) => /^sb-[0-9a-f]{32}$/.test(d));
    assert.equal(builderIds.length, 2, `${JSON.stringify(denied)}\n${missing.stderr}`);
    const live = (await fx.client.list()).map((s) => s.id);
    for (const id of builderIds) {
      assert.ok(!live.includes(id), `builder ${id} is gone`);
      assert.deepEqual(leftovers(fx.stateDir, id), [], `builder ${id} left nothing`);
    }
    // The templates dir is shared with other kilnds (the harness borrows /var/lib/kiln's): only this kilnd's entries count.
    const added = tplDirs().filter((d) => !before.includes(d));
    assert.deepEqual(added.filter((d) => (d.startsWith('.tmp-') ? d.includes(`-${fx.pid}-`) : /^e2e-prepull-[bc]$/.test(nameOf(d)))), [], 'no template or staging files left');
    const { templates } = await fx.client.call<{ templates: Array<{ name: string }> }>('GET', '/v1/templates');
    assert.deepEqual(templates.map((x) => x.name).filter((n) => n.startsWith('e2e-prepull')), ['e2e-prepull']);
  });

  t("the registry's forwarders end with their sandboxes", async () => {
    for (const id of Object.values(ids)) await fx.client.destroy(id);
    const left = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(`${fx.stateDir}/sandboxes/`);
        } catch {
          return false;
        }
      });
    assert.deepEqual(left, []);
  });
});
