/**
 * kilnd's state: one SQLite file (better-sqlite3, WAL, synchronous=FULL so a row written before
 * an API call returns survives a crash of the daemon).
 */
import Database from 'better-sqlite3';
import type { SandboxEvent, SandboxRecord, SandboxState } from '../sandbox/types.js';
import { EventLog, type EventRetention } from './events.js';

interface SandboxRow {
  id: string;
  state: string;
  spec: string;
  image_hash: string | null;
  step: string | null;
  vm: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
  ready_at: number | null;
  expires_at: number | null;
  pool: string | null;
  paused_by: string | null;
  paused_at: number | null;
  paused_ms: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS sandboxes (
  id TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  spec TEXT NOT NULL,
  image_hash TEXT,
  step TEXT,
  vm TEXT,
  error TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  ready_at INTEGER,
  expires_at INTEGER
);
`;

function fromRow(r: SandboxRow): SandboxRecord {
  return {
    id: r.id,
    state: r.state as SandboxState,
    spec: JSON.parse(r.spec) as SandboxRecord['spec'],
    imageHash: r.image_hash,
    step: r.step,
    vm: r.vm === null ? null : (JSON.parse(r.vm) as SandboxRecord['vm']),
    error: r.error === null ? null : (JSON.parse(r.error) as SandboxRecord['error']),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    readyAt: r.ready_at,
    expiresAt: r.expires_at,
    pool: r.pool ?? null,
    pausedBy: (r.paused_by as SandboxRecord['pausedBy']) ?? null,
    pausedAt: r.paused_at ?? null,
    pausedMs: r.paused_ms ?? 0,
  };
}

export class Store {
  private readonly db: Database.Database;
  /** Lifecycle events: paged, filtered in SQL, bounded by retention (events.ts). */
  readonly eventLog: EventLog;

  constructor(path: string, opts: { eventRetention?: EventRetention } = {}) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    this.migrate();
    this.eventLog = new EventLog(this.db, opts.eventRetention);
  }

  close(): void {
    this.db.close();
  }

  /** The SQLite handle, for modules that keep tables of their own (network leases and flows). */
  get sql(): Database.Database {
    return this.db;
  }

  /** Adds columns that newer versions need to a database an older kilnd made. */
  private migrate(): void {
    const cols = new Set((this.db.prepare('PRAGMA table_info(sandboxes)').all() as Array<{ name: string }>).map((c) => c.name));
    if (!cols.has('pool')) this.db.exec('ALTER TABLE sandboxes ADD COLUMN pool TEXT');
    // Pause accounting (auto-pause, issue 13): who paused it, since when, and paused time so far.
    if (!cols.has('paused_by')) this.db.exec('ALTER TABLE sandboxes ADD COLUMN paused_by TEXT');
    if (!cols.has('paused_at')) this.db.exec('ALTER TABLE sandboxes ADD COLUMN paused_at INTEGER');
    if (!cols.has('paused_ms')) this.db.exec('ALTER TABLE sandboxes ADD COLUMN paused_ms INTEGER');
  }

  insert(rec: SandboxRecord): void {
    this.db
      .prepare(
        `INSERT INTO sandboxes (id, state, spec, image_hash, step, vm, error, created_at, updated_at, ready_at, expires_at, pool, paused_by, paused_at, paused_ms)
         VALUES (@id, @state, @spec, @image_hash, @step, @vm, @error, @created_at, @updated_at, @ready_at, @expires_at, @pool, @paused_by, @paused_at, @paused_ms)`,
      )
      .run(toRow(rec));
  }

  update(rec: SandboxRecord): void {
    this.db
      .prepare(
        `UPDATE sandboxes SET state=@state, spec=@spec, image_hash=@image_hash, step=@step, vm=@vm, error=@error,
         created_at=@created_at, updated_at=@updated_at, ready_at=@ready_at, expires_at=@expires_at, pool=@pool,
         paused_by=@paused_by, paused_at=@paused_at, paused_ms=@paused_ms WHERE id=@id`,
      )
      .run(toRow(rec));
  }

  get(id: string): SandboxRecord | null {
    const row = this.db.prepare('SELECT * FROM sandboxes WHERE id = ?').get(id) as SandboxRow | undefined;
    return row ? fromRow(row) : null;
  }

  list(): SandboxRecord[] {
    return (this.db.prepare('SELECT * FROM sandboxes ORDER BY created_at').all() as SandboxRow[]).map(fromRow);
  }

  delete(id: string): void {
    this.db.prepare('DELETE FROM sandboxes WHERE id = ?').run(id);
  }

  addEvent(sandboxId: string, type: string, data: Record<string, unknown> = {}): SandboxEvent {
    return this.eventLog.add(sandboxId, type, data);
  }

  /** Every retained event after `afterSeq`, of one sandbox or all (the API reads pages: eventLog.page). */
  events(sandboxId?: string, afterSeq = 0): SandboxEvent[] {
    return this.eventLog.all(sandboxId, afterSeq);
  }
}

function toRow(rec: SandboxRecord): SandboxRow {
  return {
    id: rec.id,
    state: rec.state,
    spec: JSON.stringify(rec.spec),
    image_hash: rec.imageHash,
    step: rec.step,
    vm: rec.vm === null ? null : JSON.stringify(rec.vm),
    error: rec.error === null ? null : JSON.stringify(rec.error),
    created_at: rec.createdAt,
    updated_at: rec.updatedAt,
    ready_at: rec.readyAt,
    expires_at: rec.expiresAt,
    pool: rec.pool,
    paused_by: rec.pausedBy ?? null,
    paused_at: rec.pausedAt ?? null,
    paused_ms: rec.pausedMs ?? 0,
  };
}
