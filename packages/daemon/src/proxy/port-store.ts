/**
 * Exposed ports and access tokens of sandboxes, in kilnd's SQLite file. A row lives as long as
 * its sandbox (pause/resume keep it; destroy drops it: `forget`). Access tokens are made on
 * first use (the sandbox's create response or inspect), 128 random bits, base64url.
 */
import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';

export interface ExposedPort {
  port: number;
  public: boolean;
  createdAt: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS proxy_ports (
  sandbox_id TEXT NOT NULL,
  port INTEGER NOT NULL,
  public INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (sandbox_id, port)
);
CREATE TABLE IF NOT EXISTS proxy_tokens (
  sandbox_id TEXT PRIMARY KEY,
  token TEXT NOT NULL UNIQUE
);
`;

export class PortStore {
  constructor(private readonly db: Database.Database) {
    db.exec(SCHEMA);
  }

  expose(sandboxId: string, port: number, isPublic: boolean): ExposedPort {
    const createdAt = Date.now();
    this.db
      .prepare('INSERT INTO proxy_ports (sandbox_id, port, public, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (sandbox_id, port) DO UPDATE SET public = excluded.public')
      .run(sandboxId, port, isPublic ? 1 : 0, createdAt);
    return this.get(sandboxId, port) as ExposedPort;
  }

  unexpose(sandboxId: string, port: number): boolean {
    return this.db.prepare('DELETE FROM proxy_ports WHERE sandbox_id = ? AND port = ?').run(sandboxId, port).changes > 0;
  }

  get(sandboxId: string, port: number): ExposedPort | null {
    const r = this.db.prepare('SELECT port, public, created_at FROM proxy_ports WHERE sandbox_id = ? AND port = ?').get(sandboxId, port) as
      | { port: number; public: number; created_at: number }
      | undefined;
    return r ? { port: r.port, public: r.public === 1, createdAt: r.created_at } : null;
  }

  list(sandboxId: string): ExposedPort[] {
    const rows = this.db.prepare('SELECT port, public, created_at FROM proxy_ports WHERE sandbox_id = ? ORDER BY port').all(sandboxId) as Array<{ port: number; public: number; created_at: number }>;
    return rows.map((r) => ({ port: r.port, public: r.public === 1, createdAt: r.created_at }));
  }

  /** The sandbox's access token, made now if it has none. */
  token(sandboxId: string): string {
    const r = this.db.prepare('SELECT token FROM proxy_tokens WHERE sandbox_id = ?').get(sandboxId) as { token: string } | undefined;
    if (r) return r.token;
    const token = randomBytes(16).toString('base64url');
    this.db.prepare('INSERT OR IGNORE INTO proxy_tokens (sandbox_id, token) VALUES (?, ?)').run(sandboxId, token);
    return this.token(sandboxId);
  }

  /** The sandbox a token belongs to (null: none). */
  ownerOfToken(token: string): string | null {
    const r = this.db.prepare('SELECT sandbox_id FROM proxy_tokens WHERE token = ?').get(token) as { sandbox_id: string } | undefined;
    return r?.sandbox_id ?? null;
  }

  /** Drops a destroyed sandbox's ports and token. */
  forget(sandboxId: string): void {
    this.db.prepare('DELETE FROM proxy_ports WHERE sandbox_id = ?').run(sandboxId);
    this.db.prepare('DELETE FROM proxy_tokens WHERE sandbox_id = ?').run(sandboxId);
  }
}
