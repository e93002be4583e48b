/**
 * Per-tenant admission: concurrent sandboxes, their total memory and vCPUs, and creates per
 * minute (a sliding window). Refusals are 429 with a Retry-After: TENANT_LIMIT (a size limit:
 * retry once a sandbox is gone) or RATE_LIMITED (the window: retry when its oldest create
 * leaves it). Runs synchronously inside the manager's create (`admit`) and holds a
 * reservation until the new sandbox is owned, so concurrent creates cannot overshoot.
 */
import { KilnError } from '../errors.js';
import type { SandboxRecord, SandboxSpec } from '../sandbox/types.js';
import type { TenantLimits, TenantStore } from './tenant-store.js';

const HOLDS_RESOURCES = new Set(['creating', 'running', 'paused', 'stopping']);
const WINDOW_MS = 60_000;
/** Retry-After of a size limit: a guess (nothing tells when the tenant destroys a sandbox). */
const SIZE_RETRY_S = 10;

export const tenantLimit = (what: string, message: string, retryAfterSeconds: number, details: Record<string, unknown>): KilnError =>
  new KilnError(what === 'createsPerMinute' ? 'RATE_LIMITED' : 'TENANT_LIMIT', message, { status: 429, details: { limit: what, retryAfterSeconds, ...details } });

export class TenantAdmission {
  private readonly creates = new Map<string, number[]>();
  private readonly pending = new Map<string, Set<SandboxSpec>>();

  constructor(
    private readonly store: TenantStore,
    private readonly records: () => readonly SandboxRecord[],
    private readonly now: () => number = Date.now,
  ) {}

  usage(tenant: string): { sandboxes: number; memoryMiB: number; vcpus: number } {
    const owned = this.store.ownedBy(tenant);
    const specs = [...this.records().filter((r) => owned.has(r.id) && HOLDS_RESOURCES.has(r.state)).map((r) => r.spec), ...(this.pending.get(tenant) ?? [])];
    return { sandboxes: specs.length, memoryMiB: specs.reduce((s, x) => s + x.memoryMiB, 0), vcpus: specs.reduce((s, x) => s + x.vcpus, 0) };
  }

  /** Throws the 429 a create of this shape would get now, reserving nothing (a template build's check before it answers). */
  check(tenant: string, spec: SandboxSpec): void {
    const now = this.now();
    this.refuse(tenant, spec, (this.creates.get(tenant) ?? []).filter((t) => t > now - WINDOW_MS), now);
  }

  /** Admits a create of this shape for the tenant or throws 429; returns the reservation's release. */
  admit(tenant: string, spec: SandboxSpec): () => void {
    const now = this.now();
    const window = (this.creates.get(tenant) ?? []).filter((t) => t > now - WINDOW_MS);
    this.creates.set(tenant, window);
    this.refuse(tenant, spec, window, now);
    window.push(now);
    const mine = this.pending.get(tenant) ?? new Set<SandboxSpec>();
    this.pending.set(tenant, mine);
    const held = { ...spec };
    mine.add(held);
    return () => {
      mine.delete(held);
    };
  }

  private refuse(tenant: string, spec: SandboxSpec, window: number[], now: number): void {
    const lim: TenantLimits = this.store.limits(tenant);
    const use = this.usage(tenant);
    if (use.sandboxes + 1 > lim.maxSandboxes) {
      throw tenantLimit('maxSandboxes', `tenant ${tenant} already has ${use.sandboxes} sandboxes (limit ${lim.maxSandboxes}); destroy one first`, SIZE_RETRY_S, { sandboxes: use.sandboxes, maxSandboxes: lim.maxSandboxes });
    }
    if (use.memoryMiB + spec.memoryMiB > lim.maxMemoryMiB) {
      throw tenantLimit('maxMemoryMiB', `a ${spec.memoryMiB} MiB sandbox would take tenant ${tenant} past its ${lim.maxMemoryMiB} MiB (${use.memoryMiB} MiB in use)`, SIZE_RETRY_S, { field: 'memoryMiB', memoryMiB: use.memoryMiB, maxMemoryMiB: lim.maxMemoryMiB });
    }
    if (use.vcpus + spec.vcpus > lim.maxVcpus) {
      throw tenantLimit('maxVcpus', `${spec.vcpus} more vCPUs would take tenant ${tenant} past its ${lim.maxVcpus} (${use.vcpus} in use)`, SIZE_RETRY_S, { field: 'vcpus', vcpus: use.vcpus, maxVcpus: lim.maxVcpus });
    }
    if (window.length >= lim.createsPerMinute) {
      const retry = Math.max(1, Math.ceil(((window[0] ?? now) + WINDOW_MS - now) / 1000));
      throw tenantLimit('createsPerMinute', `tenant ${tenant} made ${window.length} creates in the last minute (limit ${lim.createsPerMinute})`, retry, { createsPerMinute: lim.createsPerMinute });
    }
  }
}
