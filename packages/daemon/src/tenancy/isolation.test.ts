import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:https';
import { tenancyHarness } from '../testing/tenancy-harness.js';
import type { AuditRecord } from '../audit/record.js';

type Err = { error: { code: string; message: string; details?: Record<string, unknown> } };

test("tenants: B gets exactly the 404 of a missing id for A's sandbox, sees none of A's things, and the attempt is audited", async () => {
  const h = await tenancyHarness();
  try {
    const a = h.tenants.createKey({ tenant: 'a' }).key;
    const b = h.tenants.createKey({ tenant: 'b' }).key;
    const made = await h.fetch('/v1/sandboxes', { method: 'POST', key: a, body: '{}' });
    assert.equal(made.status, 201);
    const id = ((await made.json()) as { id: string }).id;
    const ghost = 'sb-' + '0'.repeat(32);
    const admin = (await h.app.inject({ method: 'POST', url: '/v1/sandboxes', payload: {} })).json() as { id: string };

    for (const [method, path, body] of [
      ['GET', '', undefined],
      ['DELETE', '', undefined],
      ['GET', '/events', undefined],
      ['GET', '/logs', undefined],
      ['POST', '/exec', { cmd: ['true'] }],
      ['GET', '/files/stat?path=/etc', undefined],
      ['GET', '/network', undefined],
      ['PUT', '/timeout', { timeoutMs: 1000 }],
    ] as const) {
      const init = { method, key: b, ...(body ? { body: JSON.stringify(body) } : {}) };
      for (const target of [id, admin.id]) {
        const foreign = await h.fetch(`/v1/sandboxes/${target}${path}`, init);
        const missing = await h.fetch(`/v1/sandboxes/${ghost}${path}`, init);
        assert.equal(foreign.status, 404, `${method} ${path}`);
        assert.equal(((await foreign.json()) as Err).error.message.replace(target, 'X'), ((await missing.json()) as Err).error.message.replace(ghost, 'X'), `${method} ${path}`);
      }
    }
    const crossTenant = (await h.app.inject({ method: 'GET', url: `/v1/audit?sandbox=${id}` })).json() as { records: AuditRecord[] };
    assert.ok(crossTenant.records.some((r) => r.data.crossTenant === true && r.actor.kind === 'key' && r.actor.tenant === 'b'), 'the cross-tenant attempt is audited');

    // Lists: B sees nothing of A's (nor the admin's); A sees its own only; the admin sees all.
    const list = async (key: string) => ((await (await h.fetch('/v1/sandboxes', { key })).json()) as { sandboxes: Array<{ id: string }> }).sandboxes.map((s) => s.id);
    assert.deepEqual(await list(b), []);
    assert.deepEqual(await list(a), [id]);
    const all = ((await h.app.inject({ method: 'GET', url: '/v1/sandboxes' })).json() as { sandboxes: Array<{ id: string }> }).sandboxes.map((s) => s.id);
    assert.deepEqual(all.sort(), [id, admin.id].sort());
    const owners = ((await h.app.inject({ method: 'GET', url: '/v1/sandboxes' })).json() as { sandboxes: Array<{ id: string; tenant: string | null }> }).sandboxes;
    assert.deepEqual(Object.fromEntries(owners.map((s) => [s.id, s.tenant])), { [id]: 'a', [admin.id]: null }, 'the admin sees who owns what');
    const events = async (key: string, q = '') => (await h.fetch(`/v1/events${q}`, { key })).json() as Promise<{ events: Array<{ sandboxId: string }> }>;
    assert.deepEqual((await events(b)).events, []);
    assert.ok((await events(a)).events.length > 0 && (await events(a)).events.every((e) => e.sandboxId === id));
    assert.equal((await h.fetch(`/v1/events?sandbox=${id}`, { key: b })).status, 404);
    const audit = async (key: string, q = '') => (await h.fetch(`/v1/audit${q}`, { key })).json() as Promise<{ records: AuditRecord[] }>;
    const bAudit = (await audit(b)).records;
    assert.ok(bAudit.every((r) => r.sandboxId === undefined && r.actor.kind === 'key' && r.actor.tenant === 'b'), JSON.stringify(bAudit.slice(0, 2)));
    assert.ok(!JSON.stringify(bAudit).includes('crossTenant'));
    // B's records name A's sandbox only where B itself put the id in a query string.
    const naming = bAudit.filter((r) => JSON.stringify(r).includes(id));
    assert.ok(naming.every((r) => String(r.data.path).includes(`sandbox=${id}`)), JSON.stringify(naming));
    assert.ok((await audit(a)).records.some((r) => r.sandboxId === id));
    assert.equal((await h.fetch(`/v1/audit?sandbox=${id}`, { key: b })).status, 404);
    // A still owns a live sandbox: nothing B did touched it.
    assert.equal(h.manager.get(id).state, 'running');
    // A tenant is told nothing of the host's layout: no state dir, no VMM pid.
    const info = (await (await h.fetch('/v1/info', { key: a })).json()) as Record<string, unknown>;
    assert.equal(typeof info.version, 'string');
    assert.equal(info.stateDir, undefined, JSON.stringify(info));
    assert.ok(!JSON.stringify(info).includes('/'), `no host path in a tenant's /v1/info: ${JSON.stringify(info)}`);
    assert.equal(typeof ((await h.app.inject({ method: 'GET', url: '/v1/info' })).json() as { stateDir?: unknown }).stateDir, 'string', 'the admin still sees it');
    const view = (await (await h.fetch(`/v1/sandboxes/${id}`, { key: a })).json()) as { vm: { pid: number } | null };
    assert.equal(view.vm?.pid ?? 0, 0, 'the VMM pid is the admin\'s to see');
  } finally {
    await h.close();
  }
});

test('tenants: a read-only key reads but changes nothing (403 READ_ONLY_KEY)', async () => {
  const h = await tenancyHarness();
  try {
    const ro = h.tenants.createKey({ tenant: 'a', scopes: ['read-only'] }).key;
    assert.equal((await h.fetch('/v1/sandboxes', { key: ro })).status, 200);
    const res = await h.fetch('/v1/sandboxes', { method: 'POST', key: ro, body: '{}' });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as Err).error.code, 'READ_ONLY_KEY');
    assert.equal(h.manager.list().length, 0);
  } finally {
    await h.close();
  }
});

test('tenants: limits answer 429 with Retry-After and a code (count, memory, vcpus, creates per minute); other tenants are unaffected', async () => {
  const h = await tenancyHarness();
  try {
    const a = h.tenants.createKey({ tenant: 'a' }).key;
    const b = h.tenants.createKey({ tenant: 'b' }).key;
    const put = (body: object) => h.app.inject({ method: 'PUT', url: '/v1/tenants/a', payload: body });
    assert.equal((await put({ maxSandboxes: 1 })).statusCode, 200);
    const create = (key: string, body: object = {}) => h.fetch('/v1/sandboxes', { method: 'POST', key, body: JSON.stringify(body) });
    assert.equal((await create(a)).status, 201);
    // Two at once past the limit: both refused.
    const over = await Promise.all([create(a), create(a)]);
    for (const r of over) {
      assert.equal(r.status, 429);
      assert.equal(r.headers.get('retry-after'), '10');
      const j = (await r.json()) as Err;
      assert.equal(j.error.code, 'TENANT_LIMIT');
      assert.equal(j.error.details?.limit, 'maxSandboxes');
    }
    assert.equal((await create(b)).status, 201, 'tenant b has its own limits');
    await put({ maxSandboxes: 10, maxMemoryMiB: 1536 });
    const mem = await create(a, { memoryMiB: 1024 });
    assert.equal(mem.status, 429);
    assert.equal(((await mem.json()) as Err).error.details?.limit, 'maxMemoryMiB');
    await put({ maxMemoryMiB: 100000, maxVcpus: 3 });
    const cpu = await create(a, { vcpus: 2 });
    assert.equal(((await cpu.json()) as Err).error.details?.limit, 'maxVcpus');
    await put({ maxVcpus: 100, createsPerMinute: 2 });
    assert.equal((await create(a)).status, 201);
    const rate = await create(a);
    assert.equal(rate.status, 429);
    assert.equal(((await rate.json()) as Err).error.code, 'RATE_LIMITED');
    const retry = Number(rate.headers.get('retry-after'));
    assert.ok(retry >= 1 && retry <= 60, String(retry));
    const t = (await h.app.inject({ method: 'GET', url: '/v1/tenants/a' })).json() as { usage: { sandboxes: number } };
    assert.equal(t.usage.sandboxes, 2);
    assert.equal(h.manager.list().length, 3);
  } finally {
    await h.close();
  }
});

test('TLS: the TCP listener serves HTTPS with the given certificate; keys work over it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-unit-tls-'));
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const h = await tenancyHarness({ tls: { cert, key } });
  try {
    const k = h.tenants.createKey({ tenant: 'a' }).key;
    const get = (auth?: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(`${h.base}/v1/sandboxes`, { ca: readFileSync(cert), headers: auth ? { authorization: `Bearer ${auth}` } : {} }, (res) => {
          let body = '';
          res.setEncoding('utf8').on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    assert.equal((await get(k)).status, 200);
    assert.equal((await get()).status, 401);
    // Plain HTTP to the TLS port is not served.
    await assert.rejects(fetch(h.base.replace('https', 'http') + '/v1/health'));
  } finally {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tenants: a create served from the warm pool is owned by the tenant and counts against its limits', async () => {
  const h = await tenancyHarness({ poolSize: 1 });
  try {
    h.manager.start();
    const members = () => h.store.list().filter((r) => r.pool !== null && r.state === 'running');
    for (let i = 0; i < 500 && members().length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const member = members()[0]?.id;
    assert.ok(member, 'the pool filled');
    const a = h.tenants.createKey({ tenant: 'a' }).key;
    const b = h.tenants.createKey({ tenant: 'b' }).key;
    const made = await h.fetch('/v1/sandboxes', { method: 'POST', key: a, body: '{}' });
    assert.equal(made.status, 201);
    assert.equal(((await made.json()) as { id: string }).id, member, 'the pool member was handed over');
    assert.equal(h.tenants.ownerOf(member), 'a');
    assert.equal((await h.fetch(`/v1/sandboxes/${member}`, { key: a })).status, 200);
    assert.equal((await h.fetch(`/v1/sandboxes/${member}`, { key: b })).status, 404);
    await h.app.inject({ method: 'PUT', url: '/v1/tenants/a', payload: { maxSandboxes: 1 } });
    assert.equal((await h.fetch('/v1/sandboxes', { method: 'POST', key: a, body: '{}' })).status, 429);
  } finally {
    await h.close();
  }
});
