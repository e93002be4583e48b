/**
 * Persistent volumes: sparse ext4 images under `<stateDir>/volumes/<tenant>/`, made with
 * mkfs.ext4 on the host (a userspace tool writing a fresh filesystem; kilnd never mounts a
 * volume on the host: a guest wrote it). A sandbox created with volumes gets each one
 * hot-plugged into its VM once the VM runs (restored or booted alike, vmm/disk-hotplug.ts)
 * and mounted by the agent (guest-mount.ts). The rules (one writer, readers share, quota,
 * no removal while attached) are volume-store.ts's.
 */
import { execFile } from 'node:child_process';
import { closeSync, constants, fchownSync, ftruncateSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type Database from 'better-sqlite3';
import { invalidArgument, KilnError } from '../errors.js';
import type { GuestAgent } from '../sandbox/guest-agent.js';
import type { VmHandle, VmmDriver } from '../vmm/driver.js';
import { MAX_HOT_DISKS } from '../vmm/disk-hotplug.js';
import { mountInGuest, unmountInGuest } from './guest-mount.js';
import { ADMIN_NS, VolumeStore, volumeNotFound, type Attachment, type VolumeRow } from './volume-store.js';

const run = promisify(execFile);

export const VOLUME_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const VOLUME_SIZE = { min: 16 * 1024 * 1024, max: 1024 * 1024 * 1024 * 1024 };
/** Each tenant's volumes together, unless kilnd is told otherwise (KILN_VOLUME_QUOTA_GIB). */
export const DEFAULT_VOLUME_QUOTA_BYTES = 100 * 1024 * 1024 * 1024;
/** The guest's `user` (uid/gid 1000) owns a new volume's root directory. */
const GUEST_USER = '1000:1000';
/** Guest paths a volume may not be mounted on (or under). */
const SYSTEM_DIRS = ['/bin', '/boot', '/dev', '/etc', '/lib', '/lib64', '/proc', '/run', '/sbin', '/sys', '/usr', '/var/lib/docker', '/tmp'];

export interface VolumeMount {
  name: string;
  path: string;
  readOnly: boolean;
}

export interface VolumeView {
  name: string;
  tenant: string | null;
  sizeBytes: number;
  createdAt: string;
  attachedTo: Array<{ sandboxId: string; readOnly: boolean; path: string }>;
}

const ns = (tenant: string | null): string => tenant ?? ADMIN_NS;

/** Validates a create's `volumes` field (names, guest paths, duplicates). */
export function resolveVolumeMounts(input: unknown): VolumeMount[] {
  if (input === undefined) return [];
  if (!Array.isArray(input)) throw invalidArgument('volumes must be a list', { field: 'volumes' });
  if (input.length > MAX_HOT_DISKS) throw invalidArgument(`at most ${MAX_HOT_DISKS} volumes per sandbox`, { field: 'volumes' });
  const out: VolumeMount[] = [];
  for (const v of input as Array<{ name?: unknown; path?: unknown; readOnly?: unknown }>) {
    const name = v?.name;
    const path = v?.path;
    if (typeof name !== 'string' || !VOLUME_NAME_RE.test(name)) throw invalidArgument(`volume name ${JSON.stringify(name)} is invalid (lower-case letters, digits, . _ -)`, { field: 'volumes' });
    if (typeof path !== 'string' || !/^\/[A-Za-z0-9._/-]*$/.test(path) || path.split('/').some((c) => c === '.' || c === '..') || path.length > 256) {
      throw invalidArgument(`volume mount path ${JSON.stringify(path)} must be an absolute path without . or .. components`, { field: 'volumes' });
    }
    const p = path.replace(/\/+$/, '') || '/';
    if (p === '/' || SYSTEM_DIRS.some((d) => p === d || p.startsWith(`${d}/`))) throw invalidArgument(`a volume cannot be mounted on ${p}`, { field: 'volumes' });
    if (out.some((o) => o.name === name)) throw invalidArgument(`volume ${name} is listed twice`, { field: 'volumes' });
    if (out.some((o) => o.path === p || o.path.startsWith(`${p}/`) || p.startsWith(`${o.path}/`))) throw invalidArgument(`volume mount paths overlap at ${p}`, { field: 'volumes' });
    out.push({ name, path: p, readOnly: v.readOnly === true });
  }
  return out;
}

export class VolumeService {
  readonly store: VolumeStore;
  private readonly root: string;

  constructor(
    private readonly o: {
      stateDir: string;
      db: Database.Database;
      driver: VmmDriver;
      sandboxState: (id: string) => string | null;
      /** The admin's quota, and every tenant's default (KILN_VOLUME_QUOTA_GIB). */
      quotaBytes?: number;
      /** A tenant's quota in bytes (its maxVolumeGiB limit); absent: quotaBytes for everyone. */
      tenantQuotaBytes?: (tenant: string) => number;
    },
  ) {
    this.store = new VolumeStore(o.db, o.sandboxState);
    this.root = join(o.stateDir, 'volumes');
  }

  get quotaBytes(): number {
    return this.o.quotaBytes ?? DEFAULT_VOLUME_QUOTA_BYTES;
  }

  /** The volume quota of a tenant (null: the admin) in bytes. */
  quotaOf(tenant: string | null): number {
    return tenant !== null && this.o.tenantQuotaBytes ? this.o.tenantQuotaBytes(tenant) : this.quotaBytes;
  }

  /** What a tenant's volumes take (their sizes) and may take. */
  usage(tenant: string | null): { usedBytes: number; quotaBytes: number } {
    return { usedBytes: this.store.usedBytes(ns(tenant)), quotaBytes: this.quotaOf(tenant) };
  }

  fileOf(tenant: string | null, name: string): string {
    return join(this.root, encodeURIComponent(ns(tenant)), `${name}.ext4`);
  }

  view(r: VolumeRow): VolumeView {
    return {
      name: r.name,
      tenant: r.tenant === ADMIN_NS ? null : r.tenant,
      sizeBytes: r.sizeBytes,
      createdAt: new Date(r.createdAt).toISOString(),
      attachedTo: this.store.holders(r.tenant, r.name).map((h) => ({ sandboxId: h.sandboxId, readOnly: h.readOnly, path: h.path })),
    };
  }

  list(tenant: string | null, all = false): VolumeView[] {
    return this.store.list(all && tenant === null ? null : ns(tenant)).map((r) => this.view(r));
  }

  get(tenant: string | null, name: string): VolumeView {
    const r = this.store.get(ns(tenant), name);
    if (!r) throw volumeNotFound(name);
    return this.view(r);
  }

  async create(tenant: string | null, name: string, sizeBytes: number): Promise<VolumeView> {
    if (!VOLUME_NAME_RE.test(name)) throw invalidArgument(`volume name ${JSON.stringify(name)} is invalid (lower-case letters, digits, . _ -; at most 63)`, { field: 'name' });
    if (!Number.isInteger(sizeBytes) || sizeBytes < VOLUME_SIZE.min || sizeBytes > VOLUME_SIZE.max) {
      throw invalidArgument(`sizeBytes must be from ${VOLUME_SIZE.min} to ${VOLUME_SIZE.max}`, { field: 'sizeBytes' });
    }
    const size = Math.ceil(sizeBytes / 4096) * 4096;
    const row: VolumeRow = { tenant: ns(tenant), name, sizeBytes: size, createdAt: Date.now() };
    // The row first (name and quota checked with no await before it), then the file.
    this.store.add(row, this.quotaOf(tenant));
    const file = this.fileOf(tenant, name);
    try {
      mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
      const fd = openSync(file, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        ftruncateSync(fd, size);
      } finally {
        closeSync(fd);
      }
      await run('mkfs.ext4', ['-q', '-F', '-m', '0', '-L', name.slice(0, 16), '-E', `root_owner=${GUEST_USER},lazy_itable_init=1,lazy_journal_init=1,nodiscard`, file], { timeout: 120_000 });
    } catch (err) {
      this.store.remove(row.tenant, name);
      rmSync(file, { force: true });
      throw new KilnError('VOLUME_CREATE_FAILED', `cannot make volume ${name}: ${(err as Error).message}`, { status: 500, cause: err });
    }
    return this.view(row);
  }

  remove(tenant: string | null, name: string): void {
    if (!this.store.get(ns(tenant), name)) throw volumeNotFound(name);
    this.store.remove(ns(tenant), name);
    rmSync(this.fileOf(tenant, name), { force: true });
  }

  /** Attaches (in the store) a new sandbox's volumes, or throws VOLUME_NOT_FOUND / VOLUME_BUSY. Synchronous. */
  reserve(sandboxId: string, tenant: string | null, mounts: VolumeMount[]): void {
    if (mounts.length === 0) return;
    if (!this.o.driver.attachDisk) throw new KilnError('VOLUMES_UNSUPPORTED', `the ${this.o.driver.name} VMM driver cannot attach volumes`, { status: 501 });
    this.store.attach(
      sandboxId,
      mounts.map((m) => ({ tenant: ns(tenant), name: m.name, readOnly: m.readOnly, path: m.path })),
    );
  }

  /** Hot-plugs and mounts a running sandbox's reserved volumes (the last creation step). */
  async attachLive(sandboxId: string, vm: VmHandle, agent: GuestAgent): Promise<void> {
    const held = this.store.of(sandboxId);
    for (const [slot, a] of held.entries()) {
      await this.o.driver.attachDisk?.(vm, { file: this.fileOf(a.tenant === ADMIN_NS ? null : a.tenant, a.name), readOnly: a.readOnly, slot, serial: `kiln-vol${slot}` });
      await mountInGuest(agent, slot, a.path, a.readOnly);
    }
  }

  /** Before a sandbox's VM stops: flush and unmount its volumes (best effort). */
  async beforeStop(sandboxId: string, agent: GuestAgent | null): Promise<void> {
    const held = this.store.of(sandboxId);
    if (!agent || held.length === 0) return;
    await Promise.race([unmountInGuest(agent, held.map((h) => h.path)).catch(() => undefined), new Promise((r) => setTimeout(r, 5000).unref())]);
  }

  /** Once a sandbox's VM is gone: its attachments end, and a volume nobody holds is root's again. */
  release(sandboxId: string): Attachment[] {
    const held = this.store.detachAll(sandboxId);
    for (const a of held) {
      if (this.store.holders(a.tenant, a.name).length > 0) continue;
      try {
        const fd = openSync(this.fileOf(a.tenant === ADMIN_NS ? null : a.tenant, a.name), constants.O_RDONLY | constants.O_NOFOLLOW);
        try {
          fchownSync(fd, 0, 0);
        } finally {
          closeSync(fd);
        }
      } catch {
        // Removed meanwhile, or kilnd is not root (no jail): nothing to give back.
      }
    }
    return held;
  }
}
