/**
 * Volumes in kilnd's SQLite file: each tenant's volumes (name, size) and which sandbox holds
 * which volume, and how (read-write or read-only). The rules live here, synchronously, so a
 * check and the attachment it allows are one step with no await between them:
 *   one writer at a time, and no reader while there is a writer (a reader's kernel would see
 *   a filesystem another kernel is changing under it); readers share;
 *   a volume is removed only when nobody holds it;
 *   a tenant's volumes together stay under its quota (bytes).
 * An attachment counts while its sandbox lives (creating, running, paused, stopping): a
 * sandbox that failed, or whose VM died while kilnd was down, holds nothing (crash recovery
 * needs no sweep; stale rows are dropped when seen).
 */
import type Database from 'better-sqlite3';
import { KilnError } from '../errors.js';

/** The admin's namespace (the unix socket's caller); tenants' names cannot start with `_`. */
export const ADMIN_NS = '_admin';

export interface VolumeRow {
  tenant: string;
  name: string;
  sizeBytes: number;
  createdAt: number;
}

export interface Attachment {
  tenant: string;
  name: string;
  sandboxId: string;
  readOnly: boolean;
  path: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS volumes (
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (tenant, name)
);
CREATE TABLE IF NOT EXISTS volume_attachments (
  tenant TEXT NOT NULL,
  name TEXT NOT NULL,
  sandbox_id TEXT NOT NULL,
  read_only INTEGER NOT NULL,
  path TEXT NOT NULL,
  PRIMARY KEY (tenant, name, sandbox_id)
);
`;

const LIVE_STATES = new Set(['creating', 'running', 'paused', 'stopping']);

/** A volume_attachments row as SQLite returns it. */
interface AttachmentRow {
  tenant: string;
  name: string;
  sandbox_id: string;
  read_only: number;
  path: string;
}

const attachmentOf = (r: AttachmentRow): Attachment => ({ tenant: r.tenant, name: r.name, sandboxId: r.sandbox_id, readOnly: r.read_only === 1, path: r.path });

/** Bytes as GiB for messages (`1.5 GiB`, `100 GiB`). */
const gib = (bytes: number): string => `${Number((bytes / 1024 ** 3).toFixed(2))} GiB`;

export const volumeNotFound = (name: string): KilnError => new KilnError('VOLUME_NOT_FOUND', `volume ${name} not found`, { status: 404, details: { field: 'name' } });

export class VolumeStore {
  constructor(
    private readonly db: Database.Database,
    /** The state of a sandbox (null: no row): an attachment of a sandbox that is not live is stale. */
    private readonly sandboxState: (id: string) => string | null,
  ) {
    db.exec(SCHEMA);
  }

  get(tenant: string, name: string): VolumeRow | null {
    const r = this.db.prepare('SELECT * FROM volumes WHERE tenant = ? AND name = ?').get(tenant, name) as
      | { tenant: string; name: string; size_bytes: number; created_at: number }
      | undefined;
    return r ? { tenant: r.tenant, name: r.name, sizeBytes: r.size_bytes, createdAt: r.created_at } : null;
  }

  list(tenant: string | null): VolumeRow[] {
    const rows = (
      tenant === null ? this.db.prepare('SELECT * FROM volumes ORDER BY tenant, name').all() : this.db.prepare('SELECT * FROM volumes WHERE tenant = ? ORDER BY name').all(tenant)
    ) as Array<{ tenant: string; name: string; size_bytes: number; created_at: number }>;
    return rows.map((r) => ({ tenant: r.tenant, name: r.name, sizeBytes: r.size_bytes, createdAt: r.created_at }));
  }

  usedBytes(tenant: string): number {
    const r = this.db.prepare('SELECT COALESCE(SUM(size_bytes), 0) AS n FROM volumes WHERE tenant = ?').get(tenant) as { n: number };
    return r.n;
  }

  /**
   * Adds a volume's row, refusing a taken name or a size past the tenant's quota (its
   * maxVolumeGiB limit, in bytes). A quota lowered below what is in use refuses new volumes
   * and removes nothing.
   */
  add(v: VolumeRow, quotaBytes: number): void {
    if (this.get(v.tenant, v.name)) throw new KilnError('VOLUME_EXISTS', `a volume is already named ${v.name}`, { status: 409, details: { field: 'name' } });
    const used = this.usedBytes(v.tenant);
    if (used + v.sizeBytes > quotaBytes) {
      const who = v.tenant === ADMIN_NS ? 'the admin' : `tenant ${v.tenant}`;
      throw new KilnError(
        'VOLUME_QUOTA',
        `a ${gib(v.sizeBytes)} volume would take ${who} past its volume limit of ${gib(quotaBytes)} (${gib(used)} in use); remove a volume or raise maxVolumeGiB`,
        { status: 429, details: { limit: 'maxVolumeGiB', tenant: v.tenant === ADMIN_NS ? null : v.tenant, quotaBytes, usedBytes: used, sizeBytes: v.sizeBytes } },
      );
    }
    this.db.prepare('INSERT INTO volumes (tenant, name, size_bytes, created_at) VALUES (?, ?, ?, ?)').run(v.tenant, v.name, v.sizeBytes, v.createdAt);
  }

  remove(tenant: string, name: string): void {
    const holders = this.holders(tenant, name);
    if (holders.length > 0) {
      throw new KilnError('VOLUME_IN_USE', `volume ${name} is attached to ${holders.map((h) => h.sandboxId).join(', ')}; destroy ${holders.length > 1 ? 'them' : 'it'} first`, {
        status: 409,
        details: { holders: holders.map((h) => h.sandboxId) },
      });
    }
    this.db.prepare('DELETE FROM volumes WHERE tenant = ? AND name = ?').run(tenant, name);
  }

  /** The live attachments of a volume (stale ones are dropped). */
  holders(tenant: string, name: string): Attachment[] {
    const rows = this.db.prepare('SELECT * FROM volume_attachments WHERE tenant = ? AND name = ?').all(tenant, name) as AttachmentRow[];
    const live: Attachment[] = [];
    for (const r of rows) {
      if (LIVE_STATES.has(this.sandboxState(r.sandbox_id) ?? '')) live.push(attachmentOf(r));
      else this.db.prepare('DELETE FROM volume_attachments WHERE tenant = ? AND name = ? AND sandbox_id = ?').run(r.tenant, r.name, r.sandbox_id);
    }
    return live;
  }

  /** The attachments a sandbox holds. */
  of(sandboxId: string): Attachment[] {
    const rows = this.db.prepare('SELECT * FROM volume_attachments WHERE sandbox_id = ?').all(sandboxId) as AttachmentRow[];
    return rows.map(attachmentOf);
  }

  /**
   * Attaches every volume of `wanted` to `sandboxId`, or none: a missing volume is
   * VOLUME_NOT_FOUND, a conflict (a second writer, a reader beside a writer, a writer beside
   * readers) VOLUME_BUSY naming the holder.
   */
  attach(sandboxId: string, wanted: Array<Omit<Attachment, 'sandboxId'>>): void {
    const insert = this.db.prepare('INSERT INTO volume_attachments (tenant, name, sandbox_id, read_only, path) VALUES (?, ?, ?, ?, ?)');
    this.db.transaction(() => {
      for (const w of wanted) {
        if (!this.get(w.tenant, w.name)) throw volumeNotFound(w.name);
        const holders = this.holders(w.tenant, w.name);
        const writer = holders.find((h) => !h.readOnly);
        if (writer) {
          throw new KilnError('VOLUME_BUSY', `volume ${w.name} is attached read-write to ${writer.sandboxId}; one writer at a time, and no reader beside it`, {
            status: 409,
            details: { holder: writer.sandboxId, field: 'volumes' },
          });
        }
        if (!w.readOnly && holders.length > 0) {
          throw new KilnError('VOLUME_BUSY', `volume ${w.name} is attached read-only to ${holders.map((h) => h.sandboxId).join(', ')}; a writer needs it alone (attach it read-only with :ro)`, {
            status: 409,
            details: { holder: holders[0]?.sandboxId ?? null, field: 'volumes' },
          });
        }
        insert.run(w.tenant, w.name, sandboxId, w.readOnly ? 1 : 0, w.path);
      }
    })();
  }

  /** Drops a sandbox's attachments; returns them. */
  detachAll(sandboxId: string): Attachment[] {
    const held = this.of(sandboxId);
    this.db.prepare('DELETE FROM volume_attachments WHERE sandbox_id = ?').run(sandboxId);
    return held;
  }
}
