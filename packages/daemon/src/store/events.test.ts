// The lifecycle event log on real SQLite: retention by age and by count (on insert batches
// and on demand), pages with a cursor, filtering by sandbox in SQL, and an old database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EventLog, eventRetentionFromEnv } from './events.js';
import { Store } from './store.js';

const DAY = 24 * 3600 * 1000;
const A = 'sb-00000000000a';
const B = 'sb-00000000000b';

function tmpDb(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-events-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'kiln.db');
}

test('retention by count: the table never holds more than maxRows plus one insert batch, the newest are kept', (t) => {
  const db = new Database(tmpDb(t));
  db.pragma('synchronous = OFF');
  t.after(() => db.close());
  const log = new EventLog(db, { maxAgeMs: 0, maxRows: 100, pruneIntervalMs: 0 });
  assert.equal(log.batch, 10);
  for (let i = 1; i <= 1000; i++) {
    log.add(i % 2 ? A : B, 'tick', { i });
    assert.ok(log.count() <= 100 + log.batch, `${log.count()} rows after ${i} inserts`);
  }
  assert.equal(log.prune(), log.count() - 100);
  const kept = log.all();
  assert.equal(kept.length, 100);
  assert.equal(kept[0]?.data.i, 901);
  assert.equal(kept.at(-1)?.data.i, 1000);
  assert.ok(log.pruned >= 900);
});

test('retention by age: events older than maxAgeMs go on the next prune, newer ones stay', (t) => {
  const db = new Database(tmpDb(t));
  db.pragma('synchronous = OFF');
  t.after(() => db.close());
  let now = 1_000 * DAY;
  const log = new EventLog(db, { maxAgeMs: 30 * DAY, maxRows: 0, pruneIntervalMs: 0 }, () => now);
  log.add(A, 'old');
  now += 10 * DAY;
  log.add(A, 'middle');
  now += 25 * DAY; // 'old' is 35 days old, 'middle' 25
  log.add(B, 'new');
  assert.equal(log.prune(), 1);
  assert.deepEqual(log.all().map((e) => e.type), ['middle', 'new']);
});

test('pages: a cursor walks every event once, in order; a sandbox filter is applied in SQL', (t) => {
  const db = new Database(tmpDb(t));
  db.pragma('synchronous = OFF');
  t.after(() => db.close());
  const log = new EventLog(db, { maxAgeMs: 0, maxRows: 0, pruneIntervalMs: 0 });
  for (let i = 0; i < 25; i++) log.add(i % 5 === 0 ? A : B, 'e', { i });
  const seen: number[] = [];
  let pages = 0;
  for (let after: number | null = 0; after !== null; pages++) {
    const p = log.page({ afterSeq: after, limit: 10 });
    seen.push(...p.events.map((e) => e.data.i as number));
    after = p.nextAfter;
  }
  assert.deepEqual(seen, [...Array(25).keys()]);
  assert.equal(pages, 3);
  const a = log.page({ sandboxId: A, limit: 3 });
  assert.deepEqual(a.events.map((e) => e.data.i), [0, 5, 10]);
  assert.equal(a.nextAfter, a.events.at(-1)?.seq);
  const rest = log.page({ sandboxId: A, afterSeq: a.nextAfter ?? 0, limit: 3 });
  assert.deepEqual(rest.events.map((e) => e.data.i), [15, 20]);
  assert.equal(rest.nextAfter, null);
  // The planner uses the (sandbox_id, seq) index, not a scan of every host event.
  const plan = db.prepare('EXPLAIN QUERY PLAN SELECT * FROM events WHERE sandbox_id = ? AND seq > ? ORDER BY seq LIMIT ?').all(A, 0, 3) as Array<{ detail: string }>;
  assert.match(plan.map((p) => p.detail).join('; '), /USING INDEX events_by_sandbox/);
});

test('an older database (events without the time index) is upgraded; Store.addEvent prunes by its retention', (t) => {
  const path = tmpDb(t);
  const old = new Database(path);
  old.exec('CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, sandbox_id TEXT NOT NULL, at INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL)');
  const ins = old.prepare("INSERT INTO events (sandbox_id, at, type, data) VALUES (?, ?, 'old', '{}')");
  for (let i = 0; i < 50; i++) ins.run(A, 1);
  old.close();
  const store = new Store(path, { eventRetention: { maxAgeMs: 365 * DAY, maxRows: 20, pruneIntervalMs: 0 } });
  t.after(() => store.close());
  const idx = (store.sql.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'").all() as Array<{ name: string }>).map((r) => r.name);
  assert.ok(idx.includes('events_by_sandbox') && idx.includes('events_by_time'), idx.join());
  store.eventLog.startPruning(); // at start-up: the year-old rows are past the age limit
  store.eventLog.stopPruning();
  assert.equal(store.eventLog.count(), 0);
  for (let i = 0; i < 30; i++) store.addEvent(B, 'new', { i });
  assert.ok(store.eventLog.count() <= 20 + store.eventLog.batch);
  assert.equal(store.events(B).at(-1)?.data.i, 29);
});

test('retention settings come from the environment, with documented defaults', () => {
  assert.deepEqual(eventRetentionFromEnv({}), { maxAgeMs: 30 * DAY, maxRows: 100_000, pruneIntervalMs: 600_000 });
  assert.deepEqual(eventRetentionFromEnv({ KILN_EVENTS_MAX_AGE_DAYS: '7', KILN_EVENTS_MAX_ROWS: '500', KILN_EVENTS_PRUNE_INTERVAL_MS: '1000' }), { maxAgeMs: 7 * DAY, maxRows: 500, pruneIntervalMs: 1000 });
  assert.equal(eventRetentionFromEnv({ KILN_EVENTS_MAX_ROWS: '-3' }).maxRows, 100_000);
});
