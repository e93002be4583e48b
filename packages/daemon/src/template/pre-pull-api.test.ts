// `pull` of a template build through the API: checked before anything starts; a builder that pre-pulls is locked (DNS and the registry only) unless told otherwise.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { tenancyHarness } from '../testing/tenancy-harness.js';
import { fakeAgent } from '../testing/fakes.js';

type Err = { error: { code: string; message: string; details?: Record<string, unknown> } };
const path = (name: string, extra: Record<string, string>) => `/v1/templates/build?${new URLSearchParams({ name, from: 'registry.kiln.internal/a/base:1', ...extra }).toString()}`;

test('pull needs a registry: a kilnd without one refuses it up front', async () => {
  const h = await tenancyHarness({ templates: true });
  try {
    const r = await h.app.inject({ method: 'POST', url: path('t', { pull: JSON.stringify(['registry.kiln.internal/a/x:1']) }) });
    assert.equal(r.statusCode, 400);
    const e = (JSON.parse(r.body) as Err).error;
    assert.equal(e.code, 'INVALID_ARGUMENT');
    assert.equal(e.details?.field, 'pull');
    assert.match(e.message, /runs no registry/);
  } finally {
    await h.close();
  }
});

test('pull is refused before the stream for a builder whose policy is none, a public image without a cache, a digest; otherwise the builder is locked', async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const h = await tenancyHarness({ templates: true, registry: { remoteUrl: null }, connectAgent: async () => ({ ...fakeAgent(), dockerReady: async () => (await gate, { waitedMs: 1 }) }) as never });
  try {
    // As a tenant over TCP: the answer's status comes with its headers (a build that started would stream until the gate opens).
    const key = h.tenants.createKey({ tenant: 'a' }).key;
    const refused = async (extra: Record<string, string>, re: RegExp) => {
      const r = await h.fetch(path('t', extra), { method: 'POST', key });
      assert.equal(r.status, 400);
      const e = ((await r.json()) as Err).error;
      assert.equal(e.code, 'INVALID_ARGUMENT');
      assert.match(e.message, re);
    };
    await refused({ pull: JSON.stringify(['registry.kiln.internal/a/x:1']), network: JSON.stringify({ preset: 'none' }) }, /policy is none cannot reach/);
    await refused({ pull: JSON.stringify(['alpine:3']) }, /pull-through cache \(KILN_REGISTRY_REMOTE_URL\)/);
    await refused({ pull: JSON.stringify(['registry.kiln.internal/a/x@sha256:00']) }, /by digest/);
    await refused({ pull: '"registry.kiln.internal/a/x:1"' }, /wrong shape/);
    assert.deepEqual(h.manager.list(), [], 'nothing was started');

    const builder = () => h.manager.list().find((s) => s.spec.labels['kiln.template-builder']);
    const pulling = await h.fetch(path('p', { pull: JSON.stringify(['registry.kiln.internal/a/x:1']) }), { method: 'POST', key });
    while (!builder()) await sleep(10);
    assert.equal(builder()?.spec.network?.preset, 'locked', 'pre-pulls need the registry: the builder is locked by default');
    const plain = await h.fetch(path('q', {}), { method: 'POST', key });
    while (h.manager.list().filter((s) => s.spec.labels['kiln.template-builder']).length < 2) await sleep(10);
    assert.equal(h.manager.list().find((s) => s.spec.labels['kiln.template-builder'] === 'q')?.spec.network?.preset, 'none', 'without pulls it stays none');
    open();
    for (const r of [pulling, plain]) {
      assert.equal(r.status, 200);
      await r.text();
    }
  } finally {
    open();
    await h.close();
  }
});
