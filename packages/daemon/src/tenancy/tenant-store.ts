/**
 * Tenancy state in kilnd's SQLite file: API keys (hash only), tenants and their limits, and
 * which tenant owns which sandbox (kept after the sandbox's row is gone, so its events, logs
 * and audit records stay its owner's). A sandbox with no owner row belongs to the admin.
 */
import type Database from 'better-sqlite3';
import { KilnError } from '../errors.js';
import { keyHash, newKeyId, newKiln, type KeyScope } from './keys.js';

export interface TenantLimits {
  maxSandboxes: number;
  maxMemoryMiB: number;
  maxVcpus: number;
  createsPerMinute: number;
  /** Its volumes' sizes together (GiB); default kilnd's KILN_VOLUME_QUOTA_GIB (100). */
  maxVolumeGiB: number;
}

/** Limits of a tenant nobody set limits for (kilnd may override some: TenantStore's `defaults`). */
export const DEFAULT_TENANT_LIMITS: TenantLimits = { maxSandboxes: 10, maxMemoryMiB: 16384, maxVcpus: 16, createsPerMinute: 30, maxVolumeGiB: 100 };

export interface ApiKeyInfo {
  id: string;
  tenant: string;
  name: string | null;
  scopes: KeyScope[];
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

interface KeyRow {
  id: string;
  tenant: string;
  name: string | null;
  scopes: string;
  hash: Buffer;
  created_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS api_keys (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  name TEXT,
  scopes TEXT NOT NULL,
  hash BLOB NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER,
  last_used_at INTEGER
);
CREATE TABLE IF NOT EXISTS tenants (
  name TEXT PRIMARY KEY,
  limits TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sandbox_owners (
  sandbox_id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL
);
`;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const info = (r: KeyRow): ApiKeyInfo => ({
  id: r.id,
  tenant: r.tenant,
  name: r.name,
  scopes: JSON.parse(r.scopes) as KeyScope[],
  createdAt: new Date(r.created_at).toISOString(),
  revokedAt: iso(r.revoked_at),
  lastUsedAt: iso(r.last_used_at),
});

export const keyNotFound = (id: string): KilnError => new KilnError('KEY_NOT_FOUND', `API key ${id} not found`, { status: 404 });

export class TenantStore {
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly db: Database.Database,
    /** kilnd-wide defaults of limits a tenant has not set (e.g. maxVolumeGiB from KILN_VOLUME_QUOTA_GIB). */
    private readonly defaults: Partial<TenantLimits> = {},
  ) {
    db.exec(SCHEMA);
  }

  /** Makes a key; its full value is returned here and never again. */
  createKey(o: { tenant: string; name?: string | null; scopes?: KeyScope[] }): { key: string; info: ApiKeyInfo } {
    const id = newKeyId();
    const key = newKiln(id);
    this.insertKey(id, key, o);
    return { key, info: this.key(id) };
  }

  /** Stores a key of another shape (e.g. an E2B-style key) by the hash of its full value. */
  importKey(key: string, o: { tenant: string; name?: string | null; scopes?: KeyScope[] }): ApiKeyInfo {
    const id = newKeyId();
    this.insertKey(id, key, o);
    return this.key(id);
  }

  private insertKey(id: string, key: string, o: { tenant: string; name?: string | null; scopes?: KeyScope[] }): void {
    this.db
      .prepare('INSERT INTO api_keys (id, tenant, name, scopes, hash, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(id, o.tenant, o.name ?? null, JSON.stringify(o.scopes?.length ? o.scopes : ['sandboxes']), keyHash(key), Date.now());
  }

  key(id: string): ApiKeyInfo {
    const r = this.db.prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as KeyRow | undefined;
    if (!r) throw keyNotFound(id);
    return info(r);
  }

  /** The stored row of a key by id (hash included), for authentication. */
  keyRow(id: string): (ApiKeyInfo & { hash: Buffer }) | null {
    const r = this.db.prepare('SELECT * FROM api_keys WHERE id = ?').get(id) as KeyRow | undefined;
    return r ? { ...info(r), hash: r.hash } : null;
  }

  /** The stored row of a key by the SHA-256 of its full value (any key shape). */
  keyByHash(hash: Buffer): (ApiKeyInfo & { hash: Buffer }) | null {
    const r = this.db.prepare('SELECT * FROM api_keys WHERE hash = ?').get(hash) as KeyRow | undefined;
    return r ? { ...info(r), hash: r.hash } : null;
  }

  keys(tenant?: string): ApiKeyInfo[] {
    const rows = (tenant === undefined
      ? this.db.prepare('SELECT * FROM api_keys ORDER BY created_at').all()
      : this.db.prepare('SELECT * FROM api_keys WHERE tenant = ? ORDER BY created_at').all(tenant)) as KeyRow[];
    return rows.map(info);
  }

  revokeKey(id: string): ApiKeyInfo {
    const r = this.db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(Date.now(), id);
    if (r.changes === 0) this.key(id); // throws KEY_NOT_FOUND for an unknown id; revoking twice is a no-op
    return this.key(id);
  }

  /** Notes a key's use; written at most once a minute per key (each write is a synced commit). */
  touchKey(id: string): void {
    const now = Date.now();
    if (now - (this.touched.get(id) ?? 0) < 60_000) return;
    this.touched.set(id, now);
    this.db.prepare('UPDATE api_keys SET last_used_at = ? WHERE id = ?').run(now, id);
  }

  limits(tenant: string): TenantLimits {
    const r = this.db.prepare('SELECT limits FROM tenants WHERE name = ?').get(tenant) as { limits: string } | undefined;
    return { ...DEFAULT_TENANT_LIMITS, ...this.defaults, ...(r ? (JSON.parse(r.limits) as Partial<TenantLimits>) : {}) };
  }

  setLimits(tenant: string, patch: Partial<TenantLimits>): TenantLimits {
    const cur = this.db.prepare('SELECT limits FROM tenants WHERE name = ?').get(tenant) as { limits: string } | undefined;
    const next = { ...(cur ? (JSON.parse(cur.limits) as Partial<TenantLimits>) : {}), ...patch };
    this.db.prepare('INSERT INTO tenants (name, limits, updated_at) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET limits = excluded.limits, updated_at = excluded.updated_at').run(tenant, JSON.stringify(next), Date.now());
    return this.limits(tenant);
  }

  /** Tenants that have limits set or keys. */
  tenants(): string[] {
    const rows = this.db.prepare('SELECT name FROM tenants UNION SELECT tenant AS name FROM api_keys ORDER BY name').all() as Array<{ name: string }>;
    return rows.map((r) => r.name);
  }

  setOwner(sandboxId: string, tenant: string): void {
    this.db.prepare('INSERT OR REPLACE INTO sandbox_owners (sandbox_id, tenant) VALUES (?, ?)').run(sandboxId, tenant);
  }

  /** The tenant owning a sandbox, or null (the admin's, or unknown). */
  ownerOf(sandboxId: string): string | null {
    const r = this.db.prepare('SELECT tenant FROM sandbox_owners WHERE sandbox_id = ?').get(sandboxId) as { tenant: string } | undefined;
    return r?.tenant ?? null;
  }

  /** Ids of the sandboxes a tenant owns (also destroyed ones). */
  ownedBy(tenant: string): Set<string> {
    const rows = this.db.prepare('SELECT sandbox_id FROM sandbox_owners WHERE tenant = ?').all(tenant) as Array<{ sandbox_id: string }>;
    return new Set(rows.map((r) => r.sandbox_id));
  }
}
