import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tenancyHarness } from '../testing/tenancy-harness.js';
import { newE2bKey } from './keys.js';
import { TemplateStore } from '../template/store.js';
import { MANIFEST_FILE, MEM_FILE, SCRATCH_FILE, STATE_FILE, TEMPLATE_FORMAT, type TemplateManifest } from '../template/manifest.js';

type Err = { error: { code: string; message: string; details?: Record<string, unknown> } };

/** Writes a finished template as kilnd would (manifest and files); `tenant` absent = a shared one, as older kilnds wrote them. */
async function putTemplate(stateDir: string, key: string, name: string, memoryMiB: number, tenant?: string): Promise<void> {
  const dir = join(stateDir, 'templates', key);
  await mkdir(dir, { recursive: true });
  for (const f of [MEM_FILE, STATE_FILE]) await writeFile(join(dir, f), '');
  await writeFile(join(dir, SCRATCH_FILE), Buffer.alloc(1 << 20));
  const m: Omit<TemplateManifest, 'tenant'> & { tenant?: string } = {
    ...{ memoryMiB, vcpus: 2, diskGiB: 10, imageHash: 'h1', accel: 'tcg', vmmVersion: '0', tcgTbSizeMiB: 128 },
    formatVersion: TEMPLATE_FORMAT,
    key,
    name,
    source: 'image',
    version: 1,
    sharedMemory: true,
    parentSandbox: null,
    ...(tenant ? { tenant } : {}),
    createdAt: new Date().toISOString(),
    buildMs: 1,
    stateBytes: 0,
    dir,
    memFile: join(dir, MEM_FILE),
    stateFile: join(dir, STATE_FILE),
    scratch: join(dir, SCRATCH_FILE),
  };
  await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(m));
}

/** Shared `web` (an older kilnd's manifest: no tenant field), a's own `web` (another shape) and `api`. */
async function fixture(stateDir: string): Promise<void> {
  await putTemplate(stateDir, 'sharedweb000000', 'web', 1024);
  await putTemplate(stateDir, 'aweb0000000000', 'web', 2048, 'a');
  await putTemplate(stateDir, 'aapi0000000000', 'api', 1024, 'a');
}

test("template names are per tenant: its own first, then shared; another tenant's is never found", async () => {
  const h = await tenancyHarness({ templates: true });
  try {
    await fixture(h.stateDir);
    const s = new TemplateStore(h.stateDir);
    assert.equal((await s.resolve('web', 'a'))?.key, 'aweb0000000000', 'its own shadows the shared one');
    assert.equal((await s.resolve('web', 'b'))?.key, 'sharedweb000000', 'an older manifest without a tenant is shared');
    assert.equal((await s.resolve('web', null))?.key, 'sharedweb000000', "the admin's names are the shared ones");
    assert.equal(await s.resolve('api', 'b'), null);
    assert.equal(await s.resolve('api', null), null);
    assert.deepEqual((await s.versions('web', null)).map((t) => t.key), ['sharedweb000000']);
  } finally {
    await h.close();
  }
});

test("template names per tenant over the API: list, create, E2B templateID, snapshot and build names, rm; another tenant's answers exactly a missing name's 404", async () => {
  const h = await tenancyHarness({ templates: true, e2b: true });
  try {
    await fixture(h.stateDir);
    const a = h.tenants.createKey({ tenant: 'a' }).key;
    const b = h.tenants.createKey({ tenant: 'b' }).key;
    const names = async (key: string) =>
      ((await (await h.fetch('/v1/templates', { key })).json()) as { templates: Array<{ name: string; tenant: string | null }> }).templates.map((t) => `${t.name}:${t.tenant ?? '-'}`).sort();
    assert.deepEqual(await names(a), ['api:a', 'web:-', 'web:a']);
    assert.deepEqual(await names(b), ['web:-']);

    // A create resolves `web` to a's own (2048 MiB) for a, to the shared one (1024 MiB) for b.
    const create = (key: string, body: Record<string, unknown>) => h.fetch('/v1/sandboxes', { method: 'POST', key, body: JSON.stringify(body) });
    const conflict = async (key: string, memoryMiB: number) => ((await (await create(key, { template: 'web', memoryMiB })).json()) as Err).error.message;
    assert.match(await conflict(a, 1024), /template web \(memoryMiB 2048\)/);
    assert.match(await conflict(b, 2048), /template web \(memoryMiB 1024\)/);
    const made = await create(a, { template: 'web' });
    assert.equal(made.status, 201, await made.clone().text());
    const id = ((await made.json()) as { id: string }).id;
    const events = (await (await h.fetch(`/v1/sandboxes/${id}/events`, { key: a })).json()) as { events: Array<{ type: string; data: { templateKey?: string } }> };
    assert.equal(events.events.find((e) => e.type === 'vm-restored')?.data.templateKey, 'aweb0000000000', "restored from a's own");

    // b: a's `api` is exactly a missing name, on create and on the E2B API.
    const foreign = await create(b, { template: 'api' });
    const missing = await create(b, { template: 'nope' });
    assert.equal(foreign.status, 404);
    assert.deepEqual(((await foreign.json()) as Err).error.message.replace('api', 'X'), ((await missing.json()) as Err).error.message.replace('nope', 'X'));
    const e2bKey = newE2bKey();
    h.tenants.importKey(e2bKey, { tenant: 'b' });
    const e2b = (templateID: string) => fetch(`${h.base}/v2/sandboxes`, { method: 'POST', headers: { 'x-api-key': e2bKey, 'content-type': 'application/json' }, body: JSON.stringify({ templateID }) });
    const e2bForeign = await e2b('api');
    const e2bMissing = await e2b('nope');
    assert.equal(e2bForeign.status, 404);
    assert.equal((await e2bForeign.text()).replace('api', 'X'), (await e2bMissing.text()).replace('nope', 'X'));
    // ... and a's E2B key resolves its own `api` (the sandbox restores from it).
    const aE2b = newE2bKey();
    h.tenants.importKey(aE2b, { tenant: 'a' });
    const e2bOwn = await fetch(`${h.base}/v2/sandboxes`, { method: 'POST', headers: { 'x-api-key': aE2b, 'content-type': 'application/json' }, body: JSON.stringify({ templateID: 'api' }) });
    assert.equal(e2bOwn.status, 201, await e2bOwn.clone().text());
    const base = await e2b('base');
    assert.equal(base.status, 201, 'base works for everyone');

    // b may build its own `api` (the name is free in its namespace): the check passes to the build.
    const built = await h.fetch('/v1/templates/build?name=api&from=registry.kiln.internal/x:1', { method: 'POST', key: b });
    const last = JSON.parse((await built.text()).trim().split('\n').at(-1) ?? '{}') as { type: string; error?: { code: string } };
    assert.notEqual(last.error?.code, 'TEMPLATE_EXISTS');

    // Snapshot names: taken only within the caller's namespace.
    const snap = async (key: string, name: string) => {
      const sb = ((await (await create(key, {})).json()) as { id: string }).id;
      const r = await h.fetch(`/v1/sandboxes/${sb}/snapshot`, { method: 'POST', key, body: JSON.stringify({ name }) });
      return r.status === 201 ? 'made' : ((await r.json()) as Err).error.code;
    };
    assert.equal(await snap(a, 'api'), 'TEMPLATE_EXISTS');
    assert.notEqual(await snap(b, 'api'), 'TEMPLATE_EXISTS');

    // rm: b cannot remove a's `api` nor the shared `web` (404); a removes its own `web`, the shared one stays.
    assert.equal((await h.fetch('/v1/templates/api', { method: 'DELETE', key: b })).status, 404);
    assert.equal((await h.fetch('/v1/templates/web?tenant=a', { method: 'DELETE', key: b })).status, 404);
    assert.equal((await h.fetch('/v1/templates/web', { method: 'DELETE', key: a })).status, 204);
    assert.deepEqual(await names(a), ['api:a', 'web:-']);
    // The admin removes a tenant's template by naming the tenant; without it, the shared one.
    assert.equal((await h.app.inject({ method: 'DELETE', url: '/v1/templates/api' })).statusCode, 404);
    assert.equal((await h.app.inject({ method: 'DELETE', url: '/v1/templates/api?tenant=a' })).statusCode, 204);
    assert.deepEqual(await names(a), ['web:-']);
  } finally {
    await h.close();
  }
});
