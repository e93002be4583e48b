/**
 * Tenancy on a real kilnd and real microVMs, over its TCP listener with TLS (a self-signed
 * certificate made here with openssl): two tenants' keys made with `kiln key create`; tenant B
 * can neither see nor touch tenant A's sandbox (list, get, exec, files, events, logs, audit,
 * network, destroy, and processes/pty when kilnd has those routes) and gets exactly the 404 of
 * an id that never existed; a wrong or revoked key is 401 and audited (with the key id, never
 * the key); past a tenant's limits a create, or a template build (its builder sandbox), is 429
 * with Retry-After and no VM is made; a volume past the tenant's maxVolumeGiB is VOLUME_QUOTA;
 * template names are per tenant (A's snapshot is B's missing name).
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DaemonFixture, integrationSkipReason } from './harness.js';

const skip = integrationSkipReason();

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

describe('tenants over TCP with TLS on a real kilnd', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('tenancy');
  const tls = mkdtempSync(join(tmpdir(), 'kiln-it-tls-'));
  const cert = join(tls, 'cert.pem');
  let port = 0;
  let keyA = '';
  let keyB = '';
  let idA = '';

  const call = (method: string, path: string, key: string | null, body?: unknown): Promise<Res> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request(
        { host: '127.0.0.1', port, method, path, ca: readFileSync(cert), servername: 'localhost', headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : {}) } },
        (res) => {
          let text = '';
          res.setEncoding('utf8').on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  const code = (r: Res): string => (JSON.parse(r.body) as { error: { code: string } }).error.code;
  const newKey = async (args: string[]): Promise<string> => {
    const r = await fx.cli(['key', 'create', ...args]);
    assert.equal(r.code, 0, r.stderr);
    const key = r.stdout.toString().trim();
    assert.match(key, /^kiln_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    return key;
  };

  before(async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', join(tls, 'key.pem'), '-out', cert], { stdio: 'ignore' });
    await fx.start({ KILN_LISTEN: '127.0.0.1:0', KILN_TLS_CERT: cert, KILN_TLS_KEY: join(tls, 'key.pem') });
    const line = readFileSync(fx.logPath, 'utf8').split('\n').find((l) => l.includes('"kilnd listening"'));
    port = (JSON.parse(line ?? '{}') as { tcp?: { port?: number } }).tcp?.port ?? 0;
    assert.ok(port > 0, 'kilnd logged its TCP port');
    keyA = await newKey(['--tenant', 'a', '--name', 'a-ci']);
    keyB = await newKey(['--tenant', 'b']);
  });
  after(async () => {
    await fx.close();
    rmSync(tls, { recursive: true, force: true });
  });
  const t = (name: string, fn: () => Promise<void>) => fx.test(name, fn);

  t("tenant A's sandbox: A uses it over TLS; B gets the 404 of a missing id on every route and sees none of it", async () => {
    assert.equal((await call('GET', '/v1/health', null)).status, 200, 'health is open');
    const made = await call('POST', '/v1/sandboxes', keyA, {});
    assert.equal(made.status, 201, made.body);
    idA = (JSON.parse(made.body) as { id: string }).id;
    assert.match(idA, /^sb-[0-9a-f]{32}$/);
    const ex = await call('POST', `/v1/sandboxes/${idA}/exec`, keyA, { argv: ['sh', '-c', 'echo tenant-a'] });
    assert.equal(ex.status, 200, ex.body);
    assert.ok(ex.body.split('\n').some((l) => l.includes('"stdout"') && Buffer.from((JSON.parse(l) as { data: string }).data, 'base64').toString() === 'tenant-a\n'), ex.body);

    const ghost = `sb-${'0'.repeat(32)}`;
    const routes: Array<[string, string, unknown?]> = [
      ['GET', ''],
      ['POST', '/exec', { argv: ['touch', '/tmp/b-was-here'] }],
      ['GET', '/files?path=/etc/hostname'],
      ['PUT', '/files?path=/tmp/x'],
      ['GET', '/files/list?path=/'],
      ['GET', '/events'],
      ['GET', '/logs'],
      ['GET', '/stats'],
      ['GET', '/network'],
      ['PATCH', '/network/policy', { allow: ['example.com'] }],
      ['PUT', '/timeout', { timeoutMs: 1000 }],
      ['POST', '/pause'],
      ['POST', '/snapshot', { name: 'b-steals-a' }],
      ['DELETE', ''],
    ];
    // Background processes and terminals, when this kilnd has them (the procs branch).
    const admin = await fx.client.raw({ method: 'GET', path: `/v1/sandboxes/${idA}/processes` });
    admin.resume();
    if (admin.statusCode !== 404) routes.push(['GET', '/processes'], ['POST', '/processes', { argv: ['sleep', '100'] }], ['GET', '/processes/1/output'], ['GET', '/pty']);
    for (const [method, path, body] of routes) {
      const foreign = await call(method, `/v1/sandboxes/${idA}${path}`, keyB, body);
      const missing = await call(method, `/v1/sandboxes/${ghost}${path}`, keyB, body);
      assert.equal(foreign.status, 404, `${method} ${path}: ${foreign.body}`);
      assert.equal(code(foreign), 'SANDBOX_NOT_FOUND', `${method} ${path}`);
      assert.equal(foreign.body.replace(idA, 'X'), missing.body.replace(ghost, 'X'), `${method} ${path}: same body as a missing id`);
    }
    for (const q of [`/v1/events?sandbox=${idA}`, `/v1/audit?sandbox=${idA}`]) assert.equal((await call('GET', q, keyB)).status, 404, q);
    const listB = JSON.parse((await call('GET', '/v1/sandboxes', keyB)).body) as { sandboxes: unknown[] };
    assert.deepEqual(listB.sandboxes, []);
    for (const q of ['/v1/events', '/v1/stats']) assert.ok(!(await call('GET', q, keyB)).body.includes(idA), `${q} shows B nothing of A's`);
    // B's audit view: its own calls only; A's id appears only where B itself put it in a query.
    const bAudit = (JSON.parse((await call('GET', '/v1/audit', keyB)).body) as { records: Array<{ actor: { tenant?: string }; data: { path?: string } }> }).records;
    assert.ok(bAudit.length > 0 && bAudit.every((r) => r.actor.tenant === 'b'));
    assert.ok(bAudit.filter((r) => JSON.stringify(r).includes(idA)).every((r) => String(r.data.path).includes(`sandbox=${idA}`)));
    assert.ok(!JSON.stringify(bAudit).includes('crossTenant'));
    assert.ok((await call('GET', '/v1/audit', keyA)).body.includes(idA), "A reads its own sandbox's audit records");
    // Nothing B did reached the guest, and A's sandbox still runs.
    assert.equal((await fx.sh(idA, 'test -e /tmp/b-was-here && echo yes || echo no')).out.trim(), 'no');
    assert.equal((await fx.client.get(idA)).state, 'running');
    // The attempts are audited for the operator.
    const audit = await fx.client.call<{ records: Array<{ actor: { kind: string; tenant?: string }; data: Record<string, unknown> }> }>('GET', `/v1/audit?sandbox=${idA}&limit=10000`);
    assert.ok(audit.records.filter((r) => r.data.crossTenant === true && r.actor.tenant === 'b').length >= routes.length);
  });

  t('a wrong or revoked key is 401 UNAUTHENTICATED and audited with its key id, never the key', async () => {
    const wrong = keyA.slice(0, -2) + (keyA.endsWith('xx') ? 'yy' : 'xx');
    const r1 = await call('GET', '/v1/sandboxes', wrong);
    assert.equal(r1.status, 401);
    assert.equal(code(r1), 'UNAUTHENTICATED');
    assert.equal((await call('GET', '/v1/sandboxes', null)).status, 401);
    const revokedKey = await newKey(['--tenant', 'a']);
    const id = revokedKey.split('_')[1] ?? '';
    assert.equal((await call('GET', '/v1/sandboxes', revokedKey)).status, 200);
    const rv = await fx.cli(['key', 'revoke', id]);
    assert.equal(rv.code, 0, rv.stderr);
    const r2 = await call('GET', '/v1/sandboxes', revokedKey);
    assert.equal(r2.status, 401);
    assert.match(r2.body, /revoked/);
    const ls = await fx.cli(['key', 'ls']);
    assert.match(ls.stdout.toString(), new RegExp(`${id}\\s+a\\s+.*revoked`));
    const { records } = await fx.client.call<{ records: Array<{ actor: { kind: string; keyId?: string | null }; data: Record<string, unknown> }> }>('GET', '/v1/audit?limit=10000');
    const fails = records.filter((r) => r.data.status === 401);
    assert.ok(fails.some((r) => r.data.auth === 'wrong' && r.actor.keyId === keyA.split('_')[1]));
    assert.ok(fails.some((r) => r.data.auth === 'revoked' && r.actor.keyId === id));
    assert.ok(fails.some((r) => r.data.auth === 'missing' && r.actor.keyId === null));
    const text = readdirSync(join(fx.stateDir, 'audit')).map((f) => readFileSync(join(fx.stateDir, 'audit', f), 'utf8')).join('');
    for (const k of [keyA, keyB, revokedKey, wrong]) assert.ok(!text.includes(k.slice(22)), 'no key secret in the audit log');
  });

  t("template names are per tenant: A's snapshot `web` is A's alone; B gets a missing name's 404 for it", async () => {
    const snap = await call('POST', `/v1/sandboxes/${idA}/snapshot`, keyA, { name: 'web' });
    assert.equal(snap.status, 201, snap.body);
    const names = async (key: string) => (JSON.parse((await call('GET', '/v1/templates', key)).body) as { templates: Array<{ name: string; tenant: string | null }> }).templates.filter((x) => x.name === 'web').map((x) => x.tenant);
    assert.deepEqual(await names(keyA), ['a']);
    assert.deepEqual(await names(keyB), []);
    const foreign = await call('POST', '/v1/sandboxes', keyB, { template: 'web' });
    const missing = await call('POST', '/v1/sandboxes', keyB, { template: 'nope' });
    assert.equal(foreign.status, 404);
    assert.equal(foreign.body.replace('web', 'X'), missing.body.replace('nope', 'X'));
    assert.equal((await call('DELETE', '/v1/templates/web', keyB)).status, 404);
    // A starts from its own `web`.
    const fork = await call('POST', '/v1/sandboxes', keyA, { template: 'web' });
    assert.equal(fork.status, 201, fork.body);
    const forkId = (JSON.parse(fork.body) as { id: string }).id;
    assert.equal((await fx.sh(forkId, 'echo forked')).out.trim(), 'forked');
    assert.equal((await call('DELETE', `/v1/sandboxes/${forkId}`, keyA)).status, 204);
    // The admin's `web` is the shared one (none); --tenant names A's.
    assert.notEqual((await fx.cli(['template', 'rm', 'web'])).code, 0);
    const rm = await fx.cli(['template', 'rm', 'web', '--tenant', 'a']);
    assert.equal(rm.code, 0, rm.stderr);
    assert.deepEqual(await names(keyA), []);
  });

  t("past a tenant's limits a create is 429 with Retry-After and no VM is made", async () => {
    const set = await fx.cli(['tenant', 'set', 'a', '--max-sandboxes', '1']);
    assert.equal(set.code, 0, set.stderr);
    const before = (await fx.client.list()).length;
    const r = await call('POST', '/v1/sandboxes', keyA, {});
    assert.equal(r.status, 429, r.body);
    assert.equal(code(r), 'TENANT_LIMIT');
    assert.ok(Number(r.headers['retry-after']) > 0);
    // A template build's builder sandbox counts too: refused up front with the same 429.
    const build = await call('POST', '/v1/templates/build?name=tool&from=registry.kiln.internal/tool:1', keyA);
    assert.equal(build.status, 429, build.body);
    assert.equal(build.body, r.body, "a create's answer");
    await fx.cli(['tenant', 'set', 'a', '--max-sandboxes', '10', '--max-memory', '512']);
    const mem = await call('POST', '/v1/sandboxes', keyA, { memoryMiB: 1024 });
    assert.equal(mem.status, 429);
    assert.match(mem.body, /maxMemoryMiB/);
    await fx.cli(['tenant', 'set', 'a', '--max-memory', '65536', '--creates-per-minute', '1']);
    const rate = await call('POST', '/v1/sandboxes', keyA, {});
    assert.equal(rate.status, 429);
    assert.equal(code(rate), 'RATE_LIMITED');
    assert.ok(Number(rate.headers['retry-after']) >= 1);
    assert.equal((await fx.client.list()).length, before, 'nothing was created');
    // The volume quota is a tenant limit too.
    await fx.cli(['tenant', 'set', 'a', '--max-volume-gib', '1']);
    const vol = await call('POST', '/v1/volumes', keyA, { name: 'big', sizeBytes: 2 * 1024 ** 3 });
    assert.equal(vol.status, 429, vol.body);
    assert.equal(code(vol), 'VOLUME_QUOTA');
    assert.match(vol.body, /tenant a past its volume limit of 1 GiB \(0 GiB in use\)/);
    const ls = await fx.cli(['tenant', 'ls']);
    assert.match(ls.stdout.toString(), /^a\s+1\/10\s+.*\s0\/1\s*$/m);
    // A destroys its own sandbox over TCP.
    assert.equal((await call('DELETE', `/v1/sandboxes/${idA}`, keyA)).status, 204);
  });
});
