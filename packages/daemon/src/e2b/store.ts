/**
 * What the E2B surface keeps about a sandbox beyond kiln's own row, in kilnd's SQLite file:
 * the E2B metadata (string map, matched exactly by list filters), the template name the
 * caller asked for (`base` or a kiln template), and the envd access token.
 *
 * Access token: the plan gives every kiln sandbox an `accessToken` (branch proxy). Until that
 * lands, the E2B layer makes one per sandbox here; `accessTokenOf` (views.ts) prefers the
 * sandbox row's own token when the row has one, so the proxy's token is adopted without a
 * migration. envVars are not kept here: they are the sandbox's `spec.env` (kiln's environment
 * for every command), which the data plane applies.
 */
import type Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';

export interface E2bRow {
  sandboxId: string;
  metadata: Record<string, string>;
  templateId: string;
  accessToken: string;
  /** What the timeout does: kill (kiln's own timeout, the default) or pause (E2B's lifecycle.onTimeout 'pause': on-timeout.ts). */
  onTimeout?: 'kill' | 'pause';
  /** With onTimeout pause: traffic to the sandbox resumes it (lifecycle.autoResume). */
  autoResume?: boolean;
  /** With onTimeout pause: the timeout it was created with, s (an auto-resume arms it again). */
  timeoutS?: number;
  /** With onTimeout pause: when it pauses (ms since the epoch); null while paused. */
  endAt?: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS e2b_sandboxes (
  sandbox_id TEXT PRIMARY KEY,
  metadata TEXT NOT NULL,
  template_id TEXT NOT NULL,
  access_token TEXT NOT NULL,
  on_timeout TEXT NOT NULL DEFAULT 'kill',
  auto_resume INTEGER NOT NULL DEFAULT 0,
  timeout_s INTEGER NOT NULL DEFAULT 0,
  end_at INTEGER
);
`;

interface Row {
  sandbox_id: string;
  metadata: string;
  template_id: string;
  access_token: string;
  on_timeout: string;
  auto_resume: number;
  timeout_s: number;
  end_at: number | null;
}

const rowOf = (r: Row): E2bRow => ({
  sandboxId: r.sandbox_id,
  metadata: JSON.parse(r.metadata) as Record<string, string>,
  templateId: r.template_id,
  accessToken: r.access_token,
  onTimeout: r.on_timeout === 'pause' ? 'pause' : 'kill',
  autoResume: r.auto_resume === 1,
  timeoutS: r.timeout_s,
  endAt: r.end_at,
});

/** A new envd access token: 32 random bytes, hex (256 bits). */
export const newAccessToken = (): string => randomBytes(32).toString('hex');

export class E2bStore {
  constructor(private readonly db: Database.Database) {
    db.exec(SCHEMA);
  }

  put(row: E2bRow): void {
    this.db
      .prepare('INSERT OR REPLACE INTO e2b_sandboxes (sandbox_id, metadata, template_id, access_token, on_timeout, auto_resume, timeout_s, end_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(row.sandboxId, JSON.stringify(row.metadata), row.templateId, row.accessToken, row.onTimeout ?? 'kill', row.autoResume ? 1 : 0, row.timeoutS ?? 0, row.endAt ?? null);
  }

  /** Sets when a pause-on-timeout sandbox pauses (null: not armed). */
  setEndAt(sandboxId: string, endAt: number | null): void {
    this.db.prepare('UPDATE e2b_sandboxes SET end_at = ? WHERE sandbox_id = ?').run(endAt, sandboxId);
  }

  /** Rows of pause-on-timeout sandboxes with an end set (to arm their timers at start). */
  armed(): E2bRow[] {
    return (this.db.prepare("SELECT * FROM e2b_sandboxes WHERE on_timeout = 'pause' AND end_at IS NOT NULL").all() as Row[]).map(rowOf);
  }

  get(sandboxId: string): E2bRow | null {
    const r = this.db.prepare('SELECT * FROM e2b_sandboxes WHERE sandbox_id = ?').get(sandboxId) as Row | undefined;
    return r ? rowOf(r) : null;
  }

  /**
   * The row of a sandbox, made on first use for one created through kiln's own API (empty
   * metadata, its kiln template, a fresh token): every sandbox a key can see is usable from E2B.
   */
  ensure(sandboxId: string, templateId: string): E2bRow {
    const cur = this.get(sandboxId);
    if (cur) return cur;
    this.put({ sandboxId, metadata: {}, templateId, accessToken: newAccessToken() });
    return this.get(sandboxId) as E2bRow;
  }

  /** Drops the rows of sandboxes that no longer exist (destroyed at their timeout, or by kiln's API); returns how many. */
  prune(live: ReadonlySet<string>): number {
    const ids = (this.db.prepare('SELECT sandbox_id FROM e2b_sandboxes').all() as Array<{ sandbox_id: string }>).map((r) => r.sandbox_id).filter((id) => !live.has(id));
    const del = this.db.prepare('DELETE FROM e2b_sandboxes WHERE sandbox_id = ?');
    this.db.transaction(() => ids.forEach((id) => del.run(id)))();
    return ids.length;
  }

  delete(sandboxId: string): void {
    this.db.prepare('DELETE FROM e2b_sandboxes WHERE sandbox_id = ?').run(sandboxId);
  }
}
