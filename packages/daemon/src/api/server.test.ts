import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fakeHarness } from '../testing/harness.js';

test('API: invalid create requests get a clear 400 naming the field and create nothing', async () => {
  const h = await fakeHarness();
  try {
    const cases: Array<[unknown, RegExp]> = [
      [{ memoryMiB: -1 }, /memoryMiB/],
      [{ bogus: 1 }, /unknown field "bogus"/],
      [{ vcpus: 'two' }, /vcpus/],
      [{ env: { A: 1 } }, /env/],
    ];
    for (const [body, re] of cases) {
      const res = await h.app.inject({ method: 'POST', url: '/v1/sandboxes', payload: body as object });
      assert.equal(res.statusCode, 400, res.body);
      const j = res.json() as { error: { code: string; message: string } };
      assert.equal(j.error.code, 'INVALID_ARGUMENT');
      assert.match(j.error.message, re);
    }
    assert.equal(h.store.list().length, 0);
    assert.deepEqual(readdirSync(join(h.stateDir, 'sandboxes')), []);
  } finally {
    await h.close();
  }
});

test('API: missing sandbox is a 404 with a code', async () => {
  const h = await fakeHarness();
  try {
    for (const [method, url] of [
      ['GET', '/v1/sandboxes/sb-000000000000'],
      ['DELETE', '/v1/sandboxes/sb-000000000000'],
      ['GET', '/v1/sandboxes/nonsense'],
    ] as const) {
      const res = await h.app.inject({ method, url });
      assert.equal(res.statusCode, 404);
      assert.equal((res.json() as { error: { code: string } }).error.code, 'SANDBOX_NOT_FOUND');
    }
    const ex = await h.app.inject({ method: 'POST', url: '/v1/sandboxes/sb-000000000000/exec', payload: { argv: ['true'] } });
    assert.equal(ex.statusCode, 404);
  } finally {
    await h.close();
  }
});

test('API: create, list, inspect, events, destroy', async () => {
  const h = await fakeHarness();
  try {
    const c = await h.app.inject({ method: 'POST', url: '/v1/sandboxes', payload: { memoryMiB: 512, labels: { a: 'b' } } });
    assert.equal(c.statusCode, 201, c.body);
    const sb = c.json() as { id: string; state: string; spec: { memoryMiB: number } };
    assert.equal(sb.state, 'running');
    assert.equal(sb.spec.memoryMiB, 512);
    const l = (await h.app.inject({ method: 'GET', url: '/v1/sandboxes' })).json() as { sandboxes: Array<{ id: string }> };
    assert.deepEqual(l.sandboxes.map((s) => s.id), [sb.id]);
    const ev = (await h.app.inject({ method: 'GET', url: `/v1/sandboxes/${sb.id}/events` })).json() as { events: Array<{ type: string }> };
    assert.ok(ev.events.some((e) => e.type === 'ready'));
    const both = await h.app.inject({ method: 'POST', url: `/v1/sandboxes/${sb.id}/exec`, payload: { argv: ['x'], shell: 'x' } });
    assert.equal(both.statusCode, 400);
    const d = await h.app.inject({ method: 'DELETE', url: `/v1/sandboxes/${sb.id}` });
    assert.equal(d.statusCode, 204);
    assert.equal(h.store.list().length, 0);
  } finally {
    await h.close();
  }
});

test('API: /openapi.json describes the sandbox routes', async () => {
  const h = await fakeHarness();
  try {
    const doc = (await h.app.inject({ method: 'GET', url: '/openapi.json' })).json() as { openapi: string; paths: Record<string, unknown> };
    assert.match(doc.openapi, /^3\./);
    for (const p of ['/v1/sandboxes', '/v1/sandboxes/{id}', '/v1/sandboxes/{id}/exec', '/v1/sandboxes/{id}/files']) assert.ok(doc.paths[p], `missing ${p}`);
  } finally {
    await h.close();
  }
});
