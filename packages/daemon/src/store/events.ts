/**
 * The lifecycle event log (SQLite table `events`): appended by the manager, read a page at a
 * time by the API, filtered in SQL (index on (sandbox_id, seq)), and bounded by retention:
 * events older than `maxAgeMs` and all but the newest `maxRows` are deleted, on a timer and
 * after every batch of inserts (so the table never holds more than maxRows + one batch).
 * Events outlive their sandbox's row until retention removes them.
 */
import { EventEmitter } from 'node:events';
import type Database from 'better-sqlite3';
import type { SandboxEvent } from '../sandbox/types.js';

export interface EventRetention {
  /** Delete events older than this. Default 30 days (env KILN_EVENTS_MAX_AGE_DAYS, flag --events-max-age-days); 0 = no age limit. */
  maxAgeMs: number;
  /** Keep at most this many events (the newest). Default 100 000 (env KILN_EVENTS_MAX_ROWS, flag --events-max-rows); 0 = no count limit. */
  maxRows: number;
  /** How often retention runs besides after insert batches. Default 600 000 ms (env KILN_EVENTS_PRUNE_INTERVAL_MS). */
  pruneIntervalMs: number;
}

const DAY_MS = 24 * 3600 * 1000;
const num = (v: string | undefined, dflt: number): number => (v !== undefined && v !== '' && Number.isFinite(Number(v)) && Number(v) >= 0 ? Number(v) : dflt);

export function eventRetentionFromEnv(env: NodeJS.ProcessEnv = process.env): EventRetention {
  return {
    maxAgeMs: num(env.KILN_EVENTS_MAX_AGE_DAYS, 30) * DAY_MS,
    maxRows: Math.floor(num(env.KILN_EVENTS_MAX_ROWS, 100_000)),
    pruneIntervalMs: num(env.KILN_EVENTS_PRUNE_INTERVAL_MS, 600_000),
  };
}

export const DEFAULT_EVENT_RETENTION: EventRetention = eventRetentionFromEnv();

/** Most events one page returns. */
export const MAX_EVENT_PAGE = 10_000;

export interface EventPage {
  events: SandboxEvent[];
  /** The cursor (`after`) of the next page, or null when this page reached the newest event. */
  nextAfter: number | null;
}

export const EVENTS_SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  sandbox_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  type TEXT NOT NULL,
  data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_sandbox ON events(sandbox_id, seq);
CREATE INDEX IF NOT EXISTS events_by_time ON events(at);
`;

interface EventRow {
  seq: number;
  sandbox_id: string;
  at: number;
  type: string;
  data: string;
}

const fromRow = (r: EventRow): SandboxEvent => ({ seq: r.seq, sandboxId: r.sandbox_id, at: r.at, type: r.type, data: JSON.parse(r.data) as Record<string, unknown> });

/** Emits 'added' (with the event) after each insert, so followers wake without polling. */
export class EventLog extends EventEmitter<{ added: [SandboxEvent] }> {
  private readonly insert: Database.Statement;
  private readonly pageAll: Database.Statement;
  private readonly pageOne: Database.Statement;
  /** Prepared on first use: its table belongs to tenancy (made after this log). */
  private pageTenant: Database.Statement | undefined;
  private readonly byAge: Database.Statement;
  private readonly byCount: Database.Statement;
  private sincePrune = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Events deleted by retention since start (metrics, tests). */
  pruned = 0;

  constructor(
    private readonly db: Database.Database,
    readonly retention: EventRetention = DEFAULT_EVENT_RETENTION,
    private readonly now: () => number = Date.now,
  ) {
    super();
    this.setMaxListeners(0);
    db.exec(EVENTS_SCHEMA);
    this.insert = db.prepare('INSERT INTO events (sandbox_id, at, type, data) VALUES (?, ?, ?, ?)');
    this.pageAll = db.prepare('SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?');
    this.pageOne = db.prepare('SELECT * FROM events WHERE sandbox_id = ? AND seq > ? ORDER BY seq LIMIT ?');
    this.byAge = db.prepare('DELETE FROM events WHERE at < ?');
    // seq is the rowid: everything at or below the (maxRows+1)-th newest goes.
    this.byCount = db.prepare('DELETE FROM events WHERE seq <= (SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?)');
  }

  /** Inserts between two retention runs: a tenth of maxRows, at most 1000. */
  get batch(): number {
    return this.retention.maxRows > 0 ? Math.max(1, Math.min(1000, Math.floor(this.retention.maxRows / 10))) : 1000;
  }

  add(sandboxId: string, type: string, data: Record<string, unknown> = {}): SandboxEvent {
    const at = this.now();
    const info = this.insert.run(sandboxId, at, type, JSON.stringify(data));
    const ev: SandboxEvent = { seq: Number(info.lastInsertRowid), sandboxId, at, type, data };
    if (++this.sincePrune >= this.batch) this.prune();
    this.emit('added', ev);
    return ev;
  }

  /**
   * Events with seq > afterSeq (of one sandbox, or all; with `tenant`, only of that tenant's
   * sandboxes — tenancy/tenant-store.ts's sandbox_owners), oldest first, at most `limit`.
   */
  page(q: { sandboxId?: string; tenant?: string; afterSeq?: number; limit?: number } = {}): EventPage {
    const after = q.afterSeq ?? 0;
    const limit = Math.max(1, Math.min(q.limit ?? 1000, MAX_EVENT_PAGE));
    const rows = (
      q.tenant !== undefined
        ? (this.pageTenant ??= this.db.prepare(
            'SELECT e.* FROM events e JOIN sandbox_owners o ON o.sandbox_id = e.sandbox_id WHERE o.tenant = ? AND e.seq > ? AND (? IS NULL OR e.sandbox_id = ?) ORDER BY e.seq LIMIT ?',
          )).all(q.tenant, after, q.sandboxId ?? null, q.sandboxId ?? null, limit)
        : q.sandboxId === undefined
          ? this.pageAll.all(after, limit)
          : this.pageOne.all(q.sandboxId, after, limit)
    ) as EventRow[];
    return { events: rows.map(fromRow), nextAfter: rows.length === limit ? (rows.at(-1)?.seq ?? null) : null };
  }

  /** Every event after `afterSeq` (tests and small internal reads; the API pages). */
  all(sandboxId?: string, afterSeq = 0): SandboxEvent[] {
    const out: SandboxEvent[] = [];
    for (let after: number | null = afterSeq; after !== null; ) {
      const p = this.page({ ...(sandboxId === undefined ? {} : { sandboxId }), afterSeq: after, limit: MAX_EVENT_PAGE });
      out.push(...p.events);
      after = p.nextAfter;
    }
    return out;
  }

  /** Applies retention now; returns how many events it deleted. */
  prune(): number {
    this.sincePrune = 0;
    let n = 0;
    if (this.retention.maxAgeMs > 0) n += this.byAge.run(this.now() - this.retention.maxAgeMs).changes;
    if (this.retention.maxRows > 0) n += this.byCount.run(this.retention.maxRows).changes;
    this.pruned += n;
    return n;
  }

  /** Runs retention now and then every pruneIntervalMs. */
  startPruning(): void {
    this.prune();
    if (this.retention.pruneIntervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => this.prune(), this.retention.pruneIntervalMs);
    this.timer.unref();
  }

  stopPruning(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
  }
}
