// The follow streams (events, audit, guest logs) under a client that reads nothing: kilnd
// reads its stores only as fast as the client takes records, and keeps no backlog of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import Fastify from 'fastify';
import type { SandboxManager } from '../sandbox/manager.js';
import { EventLog } from '../store/events.js';
import { AuditLog } from '../audit/log.js';
import { GuestLogs } from '../logs/guest-logs.js';
import type { SandboxLogStore } from '../logs/store.js';
import { registerLifecycleRoutes } from './routes/lifecycle.js';
import { registerAuditRoutes } from './routes/audit.js';
import { FOLLOW_QUEUE_BYTES, registerLogRoutes } from './routes/logs.js';
import { settled } from '../testing/streaming-agent.js';
import { listenUnix, readUntil } from '../testing/stalled-client.js';

const SB = 'sb-00000000000a';
const PAD = 'x'.repeat(500);

/** Waits until `count()` stops changing. */
async function stable(count: () => number): Promise<number> {
  let last = -1;
  await settled(() => {
    const same = count() === last;
    last = count();
    return same;
  });
  return last;
}

async function eventsServer(t: { after(fn: () => Promise<void>): void }, n: number) {
  const db = new Database(':memory:');
  const log = new EventLog(db, { maxAgeMs: 0, maxRows: 0, pruneIntervalMs: 0 });
  db.transaction(() => {
    for (let i = 0; i < n; i++) log.add(i % 2 ? SB : 'sb-00000000000b', 'tick', { i, pad: PAD });
  })();
  const served = { n: 0 };
  const page = log.page.bind(log);
  log.page = (q) => {
    const p = page(q);
    served.n += p.events.length;
    return p;
  };
  const all = log.all.bind(log);
  log.all = (id, after) => {
    const evs = all(id, after);
    served.n += evs.length;
    return evs;
  };
  const app = Fastify();
  registerLifecycleRoutes(app, { eventLog: log, events: (id: string | undefined, after: number) => log.all(id, after) } as unknown as SandboxManager, async () => []);
  const srv = await listenUnix(app);
  t.after(async () => {
    await srv.close();
    db.close();
  });
  return { log, app, srv, served };
}

test('events: pages with a cursor, filtered by sandbox', { timeout: 120_000 }, async (t) => {
  const { app } = await eventsServer(t, 100);
  const first = await app.inject({ method: 'GET', url: `/v1/events?sandbox=${SB}&limit=3` });
  const p1 = first.json<{ events: Array<{ sandboxId: string; data: { i: number } }>; nextAfter: number }>();
  assert.deepEqual(p1.events.map((e) => e.data.i), [1, 3, 5]);
  const p2 = (await app.inject({ method: 'GET', url: `/v1/events?sandbox=${SB}&limit=3&after=${p1.nextAfter}` })).json<{ events: Array<{ data: { i: number } }> }>();
  assert.deepEqual(p2.events.map((e) => e.data.i), [7, 9, 11]);
  const last = (await app.inject({ method: 'GET', url: `/v1/events?after=95` })).json<{ events: unknown[]; nextAfter: number | null }>();
  assert.equal(last.events.length, 5);
  assert.equal(last.nextAfter, null);
});

test('events: a stalled follower makes kilnd read only a few pages; reading again gets the backlog, then news', { timeout: 120_000 }, async (t) => {
  const { log, srv, served } = await eventsServer(t, 20_000);
  const res = await srv.stalled('GET', '/v1/events?follow=true');
  assert.equal(res.statusCode, 200);
  const read = await stable(() => served.n);
  assert.ok(read <= 5000, `kilnd read ${read} of 20000 events for a follower that read nothing`);
  const text = await readUntil(res, (s) => s.split('\n').length > 20_000);
  assert.equal(text.split('\n').length - 1, 20_000);
  const more = readUntil(res, (s) => s.includes('"late"'));
  log.add(SB, 'late');
  assert.match(await more, /"late"/);
});

test('audit: a stalled follower makes kilnd read only a few pages of the log; it leaves no listener', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-audit-follow-'));
  const audit = await AuditLog.open({ dir });
  await Promise.all(Array.from({ length: 20_000 }, (_, i) => audit.append({ type: 'api', sandboxId: SB, data: { i, pad: PAD } })));
  let pages = 0;
  const realDir = audit.dir;
  Object.defineProperty(audit, 'dir', { get: () => (pages++, realDir) });
  const app = Fastify();
  registerAuditRoutes(app, audit);
  const srv = await listenUnix(app);
  t.after(async () => {
    await srv.close();
    await audit.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const res = await srv.stalled('GET', '/v1/audit?follow=true');
  assert.equal(res.statusCode, 200);
  const read = await stable(() => pages);
  assert.ok(read <= 5, `kilnd read ${read} pages of 1000 records for a follower that read nothing`);
  const text = await readUntil(res, (s) => s.includes('"i":19999'));
  assert.match(text, /"i":0,/);
  const more = readUntil(res, (s) => s.includes('"late"'));
  await audit.append({ type: 'api', sandboxId: SB, data: { late: true } });
  assert.match(await more, /"late"/);
  res.destroy();
  await stable(() => audit.listenerCount('record'));
  assert.equal(audit.listenerCount('record'), 0);
});

test('guest logs: a follower that falls behind skips lines (counted), never holds the guest back; it leaves no listener', { timeout: 120_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-logs-follow-'));
  const logs = new GuestLogs({ dir, maxBytesPerSandbox: 64 * 1024 * 1024 });
  logs.open(SB);
  const store = (logs as unknown as { live: Map<string, { store: SandboxLogStore }> }).live.get(SB)?.store as SandboxLogStore;
  const app = Fastify();
  registerLogRoutes(app, { get: () => ({}) } as unknown as SandboxManager, logs);
  const srv = await listenUnix(app);
  t.after(async () => {
    await srv.close();
    logs.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const res = await srv.stalled('GET', `/v1/sandboxes/${SB}/logs?follow=true`);
  assert.equal(res.statusCode, 200);
  const lines = 4 * Math.ceil(FOLLOW_QUEUE_BYTES / PAD.length);
  for (let i = 0; i < lines; i++) {
    store.append('dockerd', `${i} ${PAD}`);
    if (i % 1000 === 0) store.flush(); // the store's own write queue is bounded too
  }
  store.append('dockerd', 'the last line');
  const text = await readUntil(res, (s) => /bytes of log lines skipped/.test(s) && s.includes('the last line'));
  assert.match(text, /dockerd 0 x/, 'the first lines arrive');
  const skipped = Number(/kiln (\d+) bytes of log lines skipped/.exec(text)?.[1]);
  assert.ok(skipped > 0 && skipped < lines * (PAD.length + 40), `skipped ${skipped} bytes`);
  assert.ok(store.listenerCount('line') > 0);
  res.destroy();
  await stable(() => store.listenerCount('line'));
  assert.equal(store.listenerCount('line'), 0);
});
