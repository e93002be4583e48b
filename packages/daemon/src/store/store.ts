/**
 * kilnd's state: one SQLite file (better-sqlite3, WAL, synchronous=FULL so a row written before
 * an API call returns survives a crash of the daemon).
 */
import Database from 'better-sqlite3';
import type { SandboxEvent, SandboxRecord, SandboxState } from '../sandbox/types.js';

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
CREATE TABLE IF NOT EXISTS events (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  sandbox_id TEXT NOT NULL,
  at INTEGER NOT NULL,
  type TEXT NOT NULL,
  data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_sandbox ON events(sandbox_id, seq);
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
  };
}

export class Store {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(SCHEMA);
    this.migrate();
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
  }

  insert(rec: SandboxRecord): void {
    this.db
      .prepare(
        `INSERT INTO sandboxes (id, state, spec, image_hash, step, vm, error, created_at, updated_at, ready_at, expires_at, pool)
         VALUES (@id, @state, @spec, @image_hash, @step, @vm, @error, @created_at, @updated_at, @ready_at, @expires_at, @pool)`,
      )
      .run(toRow(rec));
  }

  update(rec: SandboxRecord): void {
    this.db
      .prepare(
        `UPDATE sandboxes SET state=@state, spec=@spec, image_hash=@image_hash, step=@step, vm=@vm, error=@error,
         created_at=@created_at, updated_at=@updated_at, ready_at=@ready_at, expires_at=@expires_at, pool=@pool WHERE id=@id`,
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
    const at = Date.now();
    const info = this.db
      .prepare('INSERT INTO events (sandbox_id, at, type, data) VALUES (?, ?, ?, ?)')
      .run(sandboxId, at, type, JSON.stringify(data));
    return { seq: Number(info.lastInsertRowid), sandboxId, at, type, data };
  }

  events(sandboxId?: string, afterSeq = 0): SandboxEvent[] {
    const rows = (
      sandboxId === undefined
        ? this.db.prepare('SELECT * FROM events WHERE seq > ? ORDER BY seq').all(afterSeq)
        : this.db.prepare('SELECT * FROM events WHERE sandbox_id = ? AND seq > ? ORDER BY seq').all(sandboxId, afterSeq)
    ) as Array<{ seq: number; sandbox_id: string; at: number; type: string; data: string }>;
    return rows.map((r) => ({
      seq: r.seq,
      sandboxId: r.sandbox_id,
      at: r.at,
      type: r.type,
      data: JSON.parse(r.data) as Record<string, unknown>,
    }));
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
  };
}
