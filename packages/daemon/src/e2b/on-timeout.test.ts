import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenancyHarness } from '../testing/tenancy-harness.js';
import { newE2bKey } from '../tenancy/keys.js';

type H = Awaited<ReturnType<typeof tenancyHarness>>;
const until = async (what: string, ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(ok(), what);
};

async function setup(h: H) {
  const key = newE2bKey();
  h.tenants.importKey(key, { tenant: 'acme' });
  const call = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
    fetch(h.base + path, { method, headers: { 'x-api-key': key, ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { key, call };
}

test("lifecycle.onTimeout 'pause' (autoPause): the sandbox has no kiln timeout, pauses at its E2B timeout, keeps everything, and connect resumes it with a new end", async () => {
  const h = await tenancyHarness({ e2b: true });
  try {
    const { call } = await setup(h);
    const made = await call('POST', '/v2/sandboxes', { templateID: 'base', timeout: 1, autoPause: true });
    assert.equal(made.status, 201);
    const id = ((await made.json()) as { sandboxID: string }).sandboxID;
    const kid = `sb-${id}`;
    assert.equal(h.manager.get(kid).expiresAt, null, 'kiln would destroy at its timeout: none');
    const info = (await (await call('GET', `/sandboxes/${id}`)).json()) as { endAt: string; lifecycle: { onTimeout: string; autoResume: boolean } };
    assert.deepEqual(info.lifecycle, { onTimeout: 'pause', autoResume: false });
    assert.ok(Date.parse(info.endAt) - Date.now() <= 1000);
    await until('paused at its timeout', () => h.manager.get(kid).state === 'paused');
    assert.equal(((await (await call('GET', `/sandboxes/${id}`)).json()) as { state: string }).state, 'paused');
    // Traffic does not resume it (no autoResume): the data plane says it is not running.
    const token = ((await (await call('GET', `/sandboxes/${id}`)).json()) as { envdAccessToken: string }).envdAccessToken;
    assert.equal((await fetch(`${h.base}/health`, { headers: { 'E2b-Sandbox-Id': id, 'X-Access-Token': token } })).status, 502);
    const c = await call('POST', `/v2/sandboxes/${id}/connect`, { timeout: 120 });
    assert.equal(c.status, 201);
    assert.equal(h.manager.get(kid).state, 'running');
    assert.equal(h.manager.get(kid).expiresAt, null);
    const end = Date.parse(((await (await call('GET', `/sandboxes/${id}`)).json()) as { endAt: string }).endAt);
    assert.ok(end - Date.now() > 100_000 && end - Date.now() <= 120_000);
    // setTimeout moves the pause timer, not a kiln timeout.
    assert.equal((await call('POST', `/sandboxes/${id}/timeout`, { timeout: 1 })).status, 204);
    assert.equal(h.manager.get(kid).expiresAt, null);
    await until('paused at the new end', () => h.manager.get(kid).state === 'paused');
    assert.equal((await call('DELETE', `/sandboxes/${id}`)).status, 204);
  } finally {
    await h.close();
  }
});

test('lifecycle.autoResume: traffic to a sandbox paused at its timeout resumes it', async () => {
  const h = await tenancyHarness({ e2b: true });
  try {
    const { call } = await setup(h);
    const made = await call('POST', '/v2/sandboxes', { templateID: 'base', timeout: 1, autoPause: true, autoResume: { enabled: true } });
    const sb = (await made.json()) as { sandboxID: string; envdAccessToken: string };
    const kid = `sb-${sb.sandboxID}`;
    await until('paused at its timeout', () => h.manager.get(kid).state === 'paused');
    const res = await fetch(`${h.base}/health`, { headers: { 'E2b-Sandbox-Id': sb.sandboxID, 'E2b-Sandbox-Port': '49983', 'X-Access-Token': sb.envdAccessToken } });
    assert.ok(res.status === 204 || res.status === 200, `health after auto-resume: ${res.status}`);
    assert.equal(h.manager.get(kid).state, 'running');
  } finally {
    await h.close();
  }
});
