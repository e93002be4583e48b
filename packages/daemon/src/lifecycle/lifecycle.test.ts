import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { KilnError } from '../errors.js';
import { fakeHarness } from '../testing/harness.js';
import type { SandboxRecord, SandboxSpec } from '../sandbox/types.js';
import { checkCapacity } from './capacity.js';
import { classifyVmExit } from './exit-reason.js';
import { Heartbeat } from './heartbeat.js';
import { idleExpired } from './idle.js';
import { Reaper } from './reaper.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const spec = (memoryMiB = 1024): SandboxSpec => ({ memoryMiB, vcpus: 2, diskGiB: 10, timeoutMs: 0, env: {}, labels: {}, template: null });
const rec = (id: string, state: SandboxRecord['state'], extra: Partial<SandboxRecord> = {}): SandboxRecord => ({
  id, state, spec: spec(), imageHash: null, step: null, vm: null, error: null, createdAt: 0, updatedAt: 0, readyAt: 0, expiresAt: null, pool: null, ...extra,
});

test('capacity: count (pool members and creating included, failed not) → 429; memory beyond the ratio → 503', () => {
  const limits = { maxSandboxes: 3, memoryOvercommitRatio: 1.5, hostMemoryMiB: 4096 };
  const rs = [rec('a', 'running'), rec('b', 'creating', { pool: 'default' }), rec('c', 'failed')];
  assert.doesNotThrow(() => checkCapacity(rs, spec(), limits));
  rs.push(rec('d', 'paused'));
  assert.throws(() => checkCapacity(rs, spec(), limits), (e: unknown) => e instanceof KilnError && e.code === 'CAPACITY_EXCEEDED' && e.status === 429);
  // 3 × 1024 promised of 6144 allowed: another 3072 fits, 3073 does not.
  const two = [rec('a', 'running'), rec('b', 'running'), rec('c', 'stopping')];
  assert.doesNotThrow(() => checkCapacity(two, spec(3072), { ...limits, maxSandboxes: 10 }));
  assert.throws(
    () => checkCapacity(two, spec(3073), { ...limits, maxSandboxes: 10 }),
    (e: unknown) => e instanceof KilnError && e.code === 'MEMORY_EXHAUSTED' && e.status === 503 && /6144 MiB/.test(e.message),
  );
});

test('the manager refuses over capacity before creating anything, even for concurrent creates', async () => {
  const h = await fakeHarness();
  try {
    const m = h.mkManager({ capacity: { maxSandboxes: 2, memoryOvercommitRatio: 100 } });
    const results = await Promise.allSettled([m.create({}), m.create({}), m.create({}), m.create({})]);
    const refused = results.filter((r) => r.status === 'rejected' && (r.reason as KilnError).code === 'CAPACITY_EXCEEDED');
    assert.equal(refused.length, 2);
    assert.equal(h.store.list().length, 2, 'no row for a refused create');
    assert.equal(h.driver.running.size, 2);
    await m.shutdown({ destroyAll: true });
  } finally {
    await h.close();
  }
});

test('exit reasons: SIGKILL, kernel panic, poweroff, reboot', () => {
  assert.equal(classifyVmExit({ reason: 'killed', exitCode: null, signal: 'SIGKILL' }, '').code, 'VM_EXITED');
  assert.equal(classifyVmExit({ reason: 'exited', exitCode: 0, signal: null }, 'sysrq: Trigger a crash\nKernel panic - not syncing: sysrq triggered crash').code, 'GUEST_PANIC');
  assert.equal(classifyVmExit({ reason: 'exited', exitCode: 0, signal: null }, 'reboot: Power down').code, 'GUEST_POWEROFF');
  assert.equal(classifyVmExit({ reason: 'exited', exitCode: 0, signal: null }, 'reboot: Restarting system').code, 'GUEST_REBOOT');
  assert.match(classifyVmExit({ reason: 'exited', exitCode: 1, signal: null }, '').message, /code 1/);
});

test('timeout: extending keeps a sandbox alive; it is destroyed when the new deadline passes', async () => {
  const h = await fakeHarness();
  try {
    const sb = await h.manager.create({ timeoutMs: 100 });
    h.manager.setTimeout(sb.id, 400);
    await sleep(200);
    assert.equal(h.store.get(sb.id)?.state, 'running');
    await sleep(400);
    assert.equal(h.store.get(sb.id), null);
    assert.equal(h.driver.running.size, 0);
    const types = h.store.events(sb.id).map((e) => e.type);
    assert.ok(types.includes('timeout-set') && types.includes('timeout'));
    const none = await h.manager.create({ timeoutMs: 100 });
    assert.equal(h.manager.setTimeout(none.id, 0).expiresAt, null);
    await sleep(200);
    assert.equal(h.store.get(none.id)?.state, 'running', 'timeout 0 = never');
  } finally {
    await h.close();
  }
});

test('idle: a call resets the idle clock; no call for idleTimeoutMs expires it', async () => {
  const r = rec('a', 'running', { spec: { ...spec(), idleTimeoutMs: 1000 }, readyAt: 1000, createdAt: 900 });
  assert.deepEqual(idleExpired([r], () => null, 1999), []);
  assert.deepEqual(idleExpired([r], () => null, 2000).map((e) => e.id), ['a']);
  assert.deepEqual(idleExpired([r], () => 1500, 2000), []);
  assert.deepEqual(idleExpired([{ ...r, pool: 'default' }, { ...r, state: 'paused' }, { ...r, spec: spec() }], () => null, 9999), [], 'pool members, paused and no-idle sandboxes never expire');

  const h = await fakeHarness();
  try {
    const sb = await h.manager.create({ idleTimeoutMs: 150 });
    const reaper = new Reaper(
      { ...hostOf(h.manager), collect: async () => [] },
      { heartbeatIntervalMs: 0, heartbeatTimeoutMs: 100, heartbeatGraceMs: 1000, gcIntervalMs: 0 },
      pino({ level: 'silent' }),
    );
    await sleep(100);
    h.manager.agentFor(sb.id, 'exec');
    await sleep(100);
    await reaper.tick();
    assert.equal(h.store.get(sb.id)?.state, 'running', 'the exec reset the clock');
    await sleep(200);
    await reaper.tick();
    assert.equal(h.store.get(sb.id), null);
    assert.ok(h.store.events(sb.id).some((e) => e.type === 'idle-timeout'));
  } finally {
    await h.close();
  }
});

function hostOf(m: Awaited<ReturnType<typeof fakeHarness>>['manager']) {
  return {
    records: () => m.records(),
    liveAgent: (id: string) => m.liveAgent(id),
    fail: (id: string, e: { code: string; message: string }) => m.fail(id, e),
    warn: () => undefined,
    lastActivityAt: (id: string) => m.lastActivityAt(id),
    expireIdle: (id: string, ms: number) => m.expireIdle(id, ms),
  };
}

test('heartbeat: a guest that stops answering is failed after the grace period and reclaimed', async () => {
  const h = await fakeHarness();
  try {
    const sb = await h.manager.create({});
    const agent = h.agents[0];
    assert.ok(agent);
    const hb = new Heartbeat(hostOf(h.manager), { timeoutMs: 50, graceMs: 200 });
    await hb.tick();
    assert.equal(h.store.get(sb.id)?.state, 'running');
    (agent as unknown as { health: () => Promise<never> }).health = () => new Promise(() => undefined); // hung guest
    await hb.tick();
    assert.equal(h.store.get(sb.id)?.state, 'running', 'within the grace period');
    await sleep(250);
    await hb.tick();
    const r = h.store.get(sb.id);
    assert.equal(r?.state, 'failed');
    assert.equal(r?.error?.code, 'GUEST_UNRESPONSIVE');
    assert.match(r?.error?.message ?? '', /no answer within 50 ms/);
    assert.equal(h.driver.running.size, 0, 'VM killed');
    assert.ok(!existsSync(join(h.stateDir, 'sandboxes', sb.id)), 'run dir removed');
  } finally {
    await h.close();
  }
});

test('gc removes orphaned run dirs, keeps those of live rows, and reports what it removed', async () => {
  const h = await fakeHarness();
  try {
    const sb = await h.manager.create({});
    mkdirSync(join(h.stateDir, 'sandboxes', 'sb-0123456789ab'));
    assert.deepEqual(await h.manager.collect(), ['run-dir sb-0123456789ab']);
    assert.ok(existsSync(join(h.stateDir, 'sandboxes', sb.id)));
    assert.deepEqual(await h.manager.collect(), []);
  } finally {
    await h.close();
  }
});

test('API: PUT timeout, GET /v1/events (host-wide, filtered, follow), POST /v1/gc', async () => {
  const h = await fakeHarness();
  try {
    const sb = await h.manager.create({});
    let res = await h.app.inject({ method: 'PUT', url: `/v1/sandboxes/${sb.id}/timeout`, payload: { timeoutMs: 60_000 } });
    assert.equal(res.statusCode, 200);
    assert.ok(Date.parse(res.json<{ expiresAt: string }>().expiresAt) > Date.now() + 50_000);
    res = await h.app.inject({ method: 'PUT', url: `/v1/sandboxes/${sb.id}/timeout`, payload: { timeoutMs: -1 } });
    assert.equal(res.statusCode, 400);
    res = await h.app.inject({ method: 'GET', url: '/v1/events' });
    const all = res.json<{ events: Array<{ sandboxId: string; type: string }> }>().events;
    assert.ok(all.some((e) => e.type === 'timeout-set'));
    res = await h.app.inject({ method: 'GET', url: `/v1/events?sandbox=sb-000000000000` });
    assert.deepEqual(res.json<{ events: unknown[] }>().events, []);
    res = await h.app.inject({ method: 'POST', url: '/v1/gc' });
    assert.deepEqual(res.json(), { removed: [] });
    const address = await h.app.listen({ port: 0, host: '127.0.0.1' });
    const ac = new AbortController();
    const r = await fetch(`${address}/v1/events?follow=true&after=${all.at(-1) ? (all as unknown as Array<{ seq: number }>).at(-1)?.seq : 0}`, { signal: ac.signal });
    const reader = r.body?.getReader();
    await h.manager.destroy(sb.id);
    let text = '';
    const deadline = Date.now() + 5000;
    while (!text.includes('"destroyed"') && Date.now() < deadline) {
      const chunk = await reader?.read();
      if (!chunk || chunk.done) break;
      text += new TextDecoder().decode(chunk.value);
    }
    ac.abort();
    await reader?.cancel().catch(() => undefined);
    assert.match(text, /"stopping"/);
  } finally {
    await h.close();
  }
});

test('gc kills a VMM whose row is gone (found by the driver) and keeps those of live rows', async () => {
  const h = await fakeHarness();
  try {
    const kept = await h.manager.create({});
    const lost = await h.manager.create({});
    h.store.delete(lost.id);
    const removed = await h.manager.collect();
    assert.ok(removed.some((l) => l.startsWith(`vmm ${lost.id} pid `)), removed.join('; '));
    assert.ok(removed.includes(`run-dir ${lost.id}`));
    assert.deepEqual([...h.driver.running.values()].map((v) => v.spec.id), [kept.id]);
  } finally {
    await h.close();
  }
});
