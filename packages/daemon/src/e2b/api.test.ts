import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenancyHarness } from '../testing/tenancy-harness.js';
import { newE2bKey } from '../tenancy/keys.js';
import { ENVD_VERSION } from './envd-version.js';

type H = Awaited<ReturnType<typeof tenancyHarness>>;
const e2b = (h: H, key: string | null, path: string, init: RequestInit = {}) => {
  const headers = new Headers(init.headers);
  if (key !== null) headers.set('X-API-Key', key);
  if (init.body !== undefined) headers.set('content-type', 'application/json');
  return fetch(h.base + path, { ...init, headers });
};
const mint = (h: H, tenant: string): string => {
  const key = newE2bKey();
  h.tenants.importKey(key, { tenant });
  return key;
};
const create = async (h: H, key: string, body: Record<string, unknown> = {}, path = '/v2/sandboxes') => {
  const res = await e2b(h, key, path, { method: 'POST', body: JSON.stringify({ templateID: 'base', ...body }) });
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()) as { sandboxID: string; envdVersion: string; envdAccessToken: string; domain: string; clientID: string; templateID: string };
};

test('E2B create (v2 and v1) answers 201 Sandbox with an e2b id, envdVersion, a token and the domain; kill is 204 then 404 {code:404}', async () => {
  const h = await tenancyHarness({ e2b: true });
  try {
    const key = mint(h, 'acme');
    for (const path of ['/v2/sandboxes', '/sandboxes']) {
      const sb = await create(h, key, { metadata: { a: '1' }, envVars: { FOO: 'bar' }, timeout: 60, ...(path === '/sandboxes' ? { secure: true } : {}) }, path);
      assert.match(sb.sandboxID, /^[0-9a-f]{32}$/);
      assert.equal(sb.envdVersion, ENVD_VERSION);
      assert.equal(sb.templateID, 'base');
      assert.equal(sb.domain, 'kiln.test');
      assert.match(sb.envdAccessToken, /^[0-9a-f]{64}$/);
      const rec = h.manager.get(`sb-${sb.sandboxID}`);
      assert.deepEqual(rec.spec.env, { FOO: 'bar' });
      assert.ok(rec.expiresAt !== null && rec.expiresAt - Date.now() <= 60_000);
      assert.equal(h.tenants.ownerOf(rec.id), 'acme');
      const del = await e2b(h, key, `/sandboxes/${sb.sandboxID}`, { method: 'DELETE' });
      assert.equal(del.status, 204);
      const again = await e2b(h, key, `/sandboxes/${sb.sandboxID}`, { method: 'DELETE' });
      assert.equal(again.status, 404);
      assert.equal(((await again.json()) as { code: number }).code, 404);
    }
    // No timeout given: E2B's 300 s.
    const sb = await create(h, key);
    const rec = h.manager.get(`sb-${sb.sandboxID}`);
    assert.ok(rec.expiresAt !== null && rec.expiresAt - Date.now() > 290_000 && rec.expiresAt - Date.now() <= 300_000);
  } finally {
    await h.close();
  }
});

test('E2B auth: X-API-KEY in any case; a missing, unknown or revoked key is 401 {code:401,message}; kiln keys work too; GET /health is open', async () => {
  const h = await tenancyHarness({ e2b: true });
  try {
    const key = mint(h, 'acme');
    const ok = await fetch(`${h.base}/v2/sandboxes`, { headers: { 'x-api-key': key } });
    assert.equal(ok.status, 200);
    assert.equal((await fetch(`${h.base}/v2/sandboxes`, { headers: { 'X-API-KEY': key } })).status, 200);
    for (const bad of [null, `e2b_${'0'.repeat(40)}`, 'nonsense']) {
      const res = await e2b(h, bad, '/v2/sandboxes');
      assert.equal(res.status, 401, String(bad));
      const body = (await res.json()) as { code: number; message: string };
      assert.equal(body.code, 401);
      assert.ok(body.message.length > 0);
    }
    const kiln = h.tenants.createKey({ tenant: 'acme' });
    assert.equal((await e2b(h, kiln.key, '/v2/sandboxes')).status, 200);
    h.tenants.revokeKey(h.tenants.keys('acme')[0]?.id as string);
    assert.equal((await e2b(h, key, '/v2/sandboxes')).status, 401);
    assert.equal((await fetch(`${h.base}/health`)).status, 200);
    // kiln's own API on the same listener is unchanged: Bearer, its error shape.
    const native = await fetch(`${h.base}/v1/sandboxes`, { headers: { 'x-api-key': kiln.key } });
    assert.equal(native.status, 401);
    assert.equal(((await native.json()) as { error: { code: string } }).error.code, 'UNAUTHENTICATED');
  } finally {
    await h.close();
  }
});

test("E2B tenancy: another key's tenant gets 404 {code:404} on every per-sandbox route and an empty list", async () => {
  const h = await tenancyHarness({ e2b: true });
  try {
    const a = mint(h, 'a');
    const b = mint(h, 'b');
    const sb = await create(h, a, { metadata: { who: 'a' } });
    const id = sb.sandboxID;
    const routes: Array<[string, string, unknown?]> = [
      ['GET', `/sandboxes/${id}`],
      ['POST', `/sandboxes/${id}/timeout`, { timeout: 5 }],
      ['POST', `/sandboxes/${id}/pause`, {}],
      ['POST', `/v2/sandboxes/${id}/connect`, {}],
      ['POST', `/sandboxes/${id}/connect`, { timeout: 10 }],
      ['POST', `/sandboxes/${id}/resume`, {}],
      ['GET', `/sandboxes/${id}/metrics`],
      ['GET', `/sandboxes/${id}/logs`],
      ['GET', `/v2/sandboxes/${id}/logs`],
      ['DELETE', `/sandboxes/${id}`],
    ];
    for (const [method, path, body] of routes) {
      const res = await e2b(h, b, path, { method, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(((await res.json()) as { code: number }).code, 404);
    }
    assert.deepEqual(await (await e2b(h, b, '/v2/sandboxes')).json(), []);
    assert.deepEqual(await (await e2b(h, b, '/sandboxes')).json(), []);
    assert.deepEqual(await (await e2b(h, b, `/sandboxes/metrics?sandbox_ids=${id}`)).json(), { sandboxes: {} });
    assert.equal(h.manager.get(`sb-${id}`).state, 'running');
    assert.equal(((await (await e2b(h, a, '/v2/sandboxes')).json()) as unknown[]).length, 1);
  } finally {
    await h.close();
  }
});

test('E2B list: state and metadata filters (as the SDK encodes them), limit and X-Next-Token paging, v1 list', async () => {
  const h = await tenancyHarness({ e2b: true });
  try {
    const key = mint(h, 'acme');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await create(h, key, { metadata: { group: i % 2 ? 'odd' : 'even', 'k y': 'v&=' } })).sandboxID);
    await h.manager.pause(`sb-${ids[0]}`);
    // The SDK: each key and value URL-encoded, joined with &, then the whole encoded again.
    const filter = (m: Record<string, string>) => encodeURIComponent(new URLSearchParams(Object.fromEntries(Object.entries(m).map(([k, v]) => [encodeURIComponent(k), encodeURIComponent(v)]))).toString());
    const list = async (q: string) => {
      const res = await e2b(h, key, `/v2/sandboxes?${q}`);
      assert.equal(res.status, 200);
      return { ids: ((await res.json()) as Array<{ sandboxID: string; state: string }>).map((s) => s.sandboxID), next: res.headers.get('x-next-token') };
    };
    assert.deepEqual(new Set((await list('')).ids), new Set(ids));
    assert.deepEqual((await list('state=paused')).ids, [ids[0]]);
    assert.equal((await list('state=running')).ids.length, 4);
    assert.equal((await list('state=running,paused')).ids.length, 5);
    assert.deepEqual(new Set((await list(`metadata=${filter({ group: 'even' })}`)).ids), new Set([ids[0], ids[2], ids[4]]));
    assert.equal((await list(`metadata=${filter({ group: 'odd', 'k y': 'v&=' })}`)).ids.length, 2);
    assert.equal((await list(`metadata=${filter({ group: 'odd', 'k y': 'other' })}`)).ids.length, 0);
    // Paging: 2 + 2 + 1, no repeats, the last page has no token.
    const seen: string[] = [];
    let token: string | null = null;
    let pages = 0;
    do {
      const p = await list(`limit=2${token ? `&nextToken=${encodeURIComponent(token)}` : ''}`);
      seen.push(...p.ids);
      token = p.next;
      pages++;
    } while (token);
    assert.equal(pages, 3);
    assert.deepEqual(new Set(seen), new Set(ids));
    assert.equal(seen.length, 5);
    assert.equal((await e2b(h, key, '/v2/sandboxes?nextToken=bogus')).status, 400);
    // v1: running only.
    assert.equal(((await (await e2b(h, key, '/sandboxes')).json()) as unknown[]).length, 4);
  } finally {
    await h.close();
  }
});

test('E2B lifecycle: timeout sets the end (may shorten); pause 204 then 409; connect resumes (201) or extends a running one (200); resume', async () => {
  const h = await tenancyHarness({ e2b: true });
  try {
    const key = mint(h, 'acme');
    const { sandboxID: id } = await create(h, key);
    const kid = `sb-${id}`;
    const post = (path: string, body: unknown) => e2b(h, key, path, { method: 'POST', body: JSON.stringify(body) });
    assert.equal((await post(`/sandboxes/${id}/timeout`, { timeout: 30 })).status, 204);
    const end = h.manager.get(kid).expiresAt as number;
    assert.ok(end - Date.now() <= 30_000);
    const info = (await (await e2b(h, key, `/sandboxes/${id}`)).json()) as { endAt: string; state: string; cpuCount: number; memoryMB: number; clientID: string };
    assert.equal(Date.parse(info.endAt), end);
    assert.equal(info.state, 'running');
    // connect on a running sandbox: 200, and it only extends.
    const c1 = await post(`/v2/sandboxes/${id}/connect`, { timeout: 5 });
    assert.equal(c1.status, 200);
    assert.equal(h.manager.get(kid).expiresAt, end, 'a shorter connect timeout does not shorten');
    assert.equal((await post(`/sandboxes/${id}/connect`, { timeout: 120 })).status, 200);
    assert.ok((h.manager.get(kid).expiresAt as number) - Date.now() > 100_000);
    // pause: 204, then 409 (the SDK's pause() → false); a paused sandbox does not expire.
    assert.equal((await post(`/sandboxes/${id}/pause`, {})).status, 204);
    assert.equal(h.manager.get(kid).state, 'paused');
    assert.equal(h.manager.get(kid).expiresAt, null);
    const again = await post(`/sandboxes/${id}/pause`, {});
    assert.equal(again.status, 409);
    assert.equal(((await again.json()) as { code: number }).code, 409);
    // connect resumes it: 201 with the same token.
    const c2 = await post(`/v2/sandboxes/${id}/connect`, {});
    assert.equal(c2.status, 201);
    assert.equal(h.manager.get(kid).state, 'running');
    assert.ok((h.manager.get(kid).expiresAt as number) - Date.now() > 290_000, 'resumed with the default 300 s');
    // resume (old SDKs): 409 while running, 201 after a pause.
    assert.equal((await post(`/sandboxes/${id}/resume`, {})).status, 409);
    assert.equal((await post(`/sandboxes/${id}/pause`, {})).status, 204);
    assert.equal((await post(`/sandboxes/${id}/resume`, { timeout: 60 })).status, 201);
    assert.equal(h.manager.get(kid).state, 'running');
  } finally {
    await h.close();
  }
});

test('E2B: what kiln cannot do is 501 E2B_UNSUPPORTED naming the feature; a bad template is 404; bad envs 400', async () => {
  const h = await tenancyHarness({ e2b: true });
  try {
    const key = mint(h, 'acme');
    const post = (path: string, body: unknown) => e2b(h, key, path, { method: 'POST', body: JSON.stringify(body) });
    const cases: Array<[string, unknown, RegExp]> = [
      ['/v2/sandboxes', { templateID: 'base', autoResume: { enabled: true } }, /autoResume/],
      ['/v2/sandboxes', { templateID: 'base', volumeMounts: [{ name: 'v', path: '/mnt' }] }, /volumeMounts/],
      ['/v2/sandboxes', { templateID: 'base', mcp: { x: {} } }, /mcp/],
    ];
    for (const [path, body, re] of cases) {
      const res = await post(path, body);
      assert.equal(res.status, 501, JSON.stringify(body));
      const j = (await res.json()) as { code: number; message: string; error_code: string };
      assert.equal(j.code, 501);
      assert.equal(j.error_code, 'E2B_UNSUPPORTED');
      assert.match(j.message, re);
    }
    assert.equal(h.manager.list().length, 0, 'nothing was created');
    const tpl = await e2b(h, key, '/v3/templates', { method: 'POST', body: '{}' });
    assert.equal(tpl.status, 501);
    assert.match(((await tpl.json()) as { message: string }).message, /templates API/);
    const { sandboxID } = await create(h, key);
    const fork = await post(`/sandboxes/${sandboxID}/fork`, {});
    assert.equal(fork.status, 501);
    assert.equal((await post('/v2/sandboxes', { templateID: 'nope' })).status, 404);
    const env = await post('/v2/sandboxes', { templateID: 'base', envVars: { 'BAD NAME': 'x' } });
    assert.equal(env.status, 400);
    assert.equal(((await env.json()) as { code: number }).code, 400);
  } finally {
    await h.close();
  }
});

test('E2B data plane front: E2b-Sandbox-Id requests need the access token; unknown sandboxes are 502; /health is 204 without a data plane; other requests 501', async () => {
  const h = await tenancyHarness({ e2b: true });
  try {
    const key = mint(h, 'acme');
    const sb = await create(h, key);
    const dp = (id: string, path: string, headers: Record<string, string> = {}, method = 'GET') => fetch(h.base + path, { method, headers: { 'E2b-Sandbox-Id': id, 'E2b-Sandbox-Port': '49983', ...headers } });
    assert.equal((await dp('0'.repeat(32), '/health')).status, 502);
    assert.equal((await dp(sb.sandboxID, '/health')).status, 204, 'health is open, as envd has it');
    assert.equal((await dp(sb.sandboxID, '/process.Process/List', {}, 'POST')).status, 401);
    assert.equal((await dp(sb.sandboxID, '/process.Process/List', { 'X-Access-Token': 'wrong' }, 'POST')).status, 401);
    // kiln's envd is registered for 49983 by mountE2b; without a data-plane handler, 501.
    assert.ok(h.e2b?.front.portHandlers.has(49983), 'the envd handler is registered');
    h.e2b?.front.portHandlers.delete(49983);
    assert.equal((await dp(sb.sandboxID, '/process.Process/List', { 'X-Access-Token': sb.envdAccessToken }, 'POST')).status, 501);
    // A registered handler gets the request with the kiln id.
    const seen: string[] = [];
    h.e2b?.front.portHandlers.set(49983, (_req, res, ctx) => {
      seen.push(ctx.sandboxId);
      res.writeHead(200).end('ok');
    });
    assert.equal((await dp(sb.sandboxID, '/process.Process/List', { 'X-Access-Token': sb.envdAccessToken }, 'POST')).status, 200);
    assert.deepEqual(seen, [`sb-${sb.sandboxID}`]);
    await h.manager.pause(`sb-${sb.sandboxID}`);
    h.e2b?.front.portHandlers.clear();
    assert.equal((await dp(sb.sandboxID, '/health')).status, 502, 'a paused sandbox is not running');
  } finally {
    await h.close();
  }
});

test('POST /v1/keys {e2b: true} (kiln key create --e2b, the admin socket) makes an e2b_<40 hex> key that the E2B API takes', async () => {
  const h = await tenancyHarness({ e2b: true });
  try {
    const res = await h.app.inject({ method: 'POST', url: '/v1/keys', payload: { tenant: 'acme', e2b: true } });
    assert.equal(res.statusCode, 201, res.body);
    const k = res.json<{ key: string; tenant: string; id: string }>();
    assert.match(k.key, /^e2b_[0-9a-f]{40}$/);
    assert.equal(k.tenant, 'acme');
    assert.equal((await e2b(h, k.key, '/v2/sandboxes')).status, 200);
    assert.equal((await h.fetch('/v1/sandboxes', { key: k.key })).status, 200, 'and kiln API takes it as a Bearer key');
  } finally {
    await h.close();
  }
});
