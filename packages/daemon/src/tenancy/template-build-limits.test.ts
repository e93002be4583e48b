import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { tenancyHarness } from '../testing/tenancy-harness.js';
import { fakeAgent } from '../testing/fakes.js';

type Err = { error: { code: string; message: string; details?: Record<string, unknown> } };
type Listed = { sandboxes: Array<{ id: string; state: string; spec: { labels: Record<string, string> }; tenant: string | null }> };

test("template builds: a tenant's builder sandbox is its own, labelled, and counts against its limits; past them a build is refused up front like a create; the admin's are unlimited", async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  // Every guest's dockerd answers once the gate opens: a build's builder stays up until then.
  const h = await tenancyHarness({ templates: true, connectAgent: async () => ({ ...fakeAgent(), dockerReady: async () => (await gate, { waitedMs: 1 }) }) as never });
  try {
    const a = h.tenants.createKey({ tenant: 'a' }).key;
    h.tenants.setLimits('a', { maxSandboxes: 1 });
    const url = (name: string) => `/v1/templates/build?name=${name}&from=registry.kiln.internal/x:1`;
    const build = (key: string, name: string) => h.fetch(url(name), { method: 'POST', key });
    const mine = async (): Promise<Listed['sandboxes']> => ((await (await h.fetch('/v1/sandboxes', { key: a })).json()) as Listed).sandboxes;

    const first = await build(a, 'web');
    assert.equal(first.status, 200);
    const building = (name: string) => h.manager.list().find((s) => s.state !== 'destroyed' && s.spec.labels['kiln.template-builder'] === name);
    while (!building('web')) await sleep(10);
    const builder = (await mine()).find((s) => s.id === building('web')?.id);
    assert.ok(builder, "the builder is in the tenant's list");
    assert.equal(builder.tenant, 'a', "the builder is the tenant's");
    assert.deepEqual(builder.spec.labels, { 'kiln.template-builder': 'web' }, 'and says what it builds');

    // The builder takes the tenant's one sandbox: a create and another build get the same 429.
    const created = await h.fetch('/v1/sandboxes', { method: 'POST', key: a, body: '{}' });
    const second = await build(a, 'api');
    assert.equal(created.status, 429);
    assert.equal(second.status, 429, 'refused before the stream starts');
    assert.equal(second.headers.get('retry-after'), created.headers.get('retry-after'));
    assert.deepEqual((await second.json()) as Err, (await created.json()) as Err);
    assert.equal((await mine()).filter((s) => s.state !== 'destroyed').length, 1, 'the refused build made nothing');

    // The admin's builds (the unix socket) are not limited, and their builders are the admin's.
    const adminBuild = h.app.inject({ method: 'POST', url: url('shared') });
    while (!building('shared')) await sleep(10);

    // Memory: a builder (the default 1024 MiB) past the tenant's memory is refused the same way.
    h.tenants.setLimits('a', { maxSandboxes: 10, maxMemoryMiB: 1500 });
    const mem = await build(a, 'api');
    assert.equal(mem.status, 429);
    assert.equal(((await mem.json()) as Err).error.details?.field, 'memoryMiB');

    open();
    const adminDone = await adminBuild;
    assert.equal(adminDone.statusCode, 200);
    for (const text of [await first.text(), adminDone.body]) {
      const events = text.trim().split('\n').map((l) => JSON.parse(l) as { type: string });
      assert.equal(events.at(-1)?.type, 'error', 'the fake guest cannot build; the builder is destroyed');
    }
    assert.deepEqual((await mine()).filter((s) => s.state !== 'destroyed'), [], 'nothing of the build is left');
    assert.equal(h.tenants.ownerOf(builder.id), 'a');
    assert.equal(h.tenants.ownedBy('a').size, 1, "the admin's builder is not the tenant's");
  } finally {
    open();
    await h.close();
  }
});
