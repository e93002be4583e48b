import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tenancyHarness } from '../testing/tenancy-harness.js';
import { newE2bKey } from '../tenancy/keys.js';
import type { SpecInput } from '../sandbox/spec.js';

type Rec = { state: string; pausedBy?: string | null; expiresAt: number | null };

test("connect wakes a sandbox kiln's auto-pause put to sleep and keeps its own timeout (issue 13)", async (t) => {
  const h = await tenancyHarness({ e2b: true });
  try {
    const key = newE2bKey();
    h.tenants.importKey(key, { tenant: 'acme' });
    const rec = await h.manager.create({ autoPauseMs: 1000, timeoutMs: 600_000 } as SpecInput, { own: (id) => h.tenants.setOwner(id, 'acme') });
    if (!('pausedBy' in rec)) return t.skip('this kilnd has no auto-pause (branch autopause, issue 13)');
    const id = rec.id.slice(3);
    const deadline = Date.now() + 20_000;
    while ((h.manager.get(rec.id) as Rec).pausedBy !== 'auto' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal((h.manager.get(rec.id) as Rec).pausedBy, 'auto');
    const before = (h.manager.get(rec.id) as Rec).expiresAt as number;
    const info = (await (await fetch(`${h.base}/sandboxes/${id}`, { headers: { 'x-api-key': key } })).json()) as { state: string };
    assert.equal(info.state, 'paused');
    const res = await fetch(`${h.base}/v2/sandboxes/${id}/connect`, { method: 'POST', headers: { 'x-api-key': key, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 201);
    const after = h.manager.get(rec.id) as Rec;
    assert.equal(after.state, 'running');
    assert.ok((after.expiresAt as number) >= before, 'the timeout is its own (≈600 s), not reset to 300 s');
    assert.ok((after.expiresAt as number) - Date.now() > 400_000);
  } finally {
    await h.close();
  }
});
