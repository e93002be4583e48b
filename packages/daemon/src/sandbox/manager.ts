/**
 * The sandbox manager: owns every sandbox's lifecycle, and is what the API talks to. Creation
 * (create.ts, with the warm pool) runs as named steps with undos; state-changing operations
 * (pause, resume, snapshot, destroy) hold the sandbox's operation lock exclusively and guest
 * calls share it (op-lock.ts); a VM that dies is noticed and its resources reclaimed
 * (lifecycle/vm-exit.ts); on start-up the store is reconciled with what is really running
 * (lifecycle/reconcile.ts) and orphans are removed (lifecycle/orphans.ts).
 */
import { mkdir } from 'node:fs/promises';
import { invalidState, KilnError } from '../errors.js';
import { reconcileOne } from '../lifecycle/reconcile.js';
import { removeOrphans } from '../lifecycle/orphans.js';
import { failSandbox, onAgentClosed, watchVm } from '../lifecycle/vm-exit.js';
import type { RegistryService } from '../registry/service.js';
import type { Store } from '../store/store.js';
import type { VmHandle, VmmDriver } from '../vmm/driver.js';
import { SandboxCreator, type CreateOptions } from './create.js';
import type { GuestAgent, GuestImage } from './guest-agent.js';
import type { Release } from './op-lock.js';
import { scratchOf } from './run-dir.js';
import { SandboxRuntime, type ManagerOptions } from './runtime.js';
import { autoPause, hold, resumeVm, wake } from './sleep.js';
import { resolveSpec, type SpecInput } from './spec.js';
import { assertAction, type SandboxAction } from './state-machine.js';
import type { SandboxError, SandboxRecord, SandboxSpec } from './types.js';

export type { ManagerOptions } from './runtime.js';

/** A guest call's hold on a sandbox (see useAgent). */
export interface AgentUse {
  agent: GuestAgent;
  /** The sandbox as it was when the hold was granted. */
  rec: SandboxRecord;
  /** Ends the hold; a pause, snapshot or destroy waiting for it may then run. */
  release: Release;
}

export class SandboxManager {
  private readonly rt: SandboxRuntime;
  private readonly creator: SandboxCreator;

  constructor(o: ManagerOptions) {
    this.rt = new SandboxRuntime(
      o,
      (id, expiresAt) => {
        o.store.addEvent(id, 'timeout', { expiresAt });
        this.destroy(id).catch((err: unknown) => this.rt.log(id).error({ err }, 'destroy on timeout failed'));
      },
      (id) => autoPause(this.rt, id),
    );
    this.creator = new SandboxCreator(this.rt, (id) => this.destroy(id));
  }

  /** The private registry sandboxes reach, or null. */
  get registry(): RegistryService | null {
    return this.rt.o.registry ?? null;
  }

  get driver(): VmmDriver {
    return this.rt.driver;
  }

  /** Reconciles the store with reality. Call once at daemon start. */
  async init(): Promise<void> {
    const rt = this.rt;
    await mkdir(rt.sandboxesDir, { recursive: true, mode: 0o700 });
    const ops = {
      adopt: (id: string, vm: VmHandle, agent: GuestAgent) => {
        rt.newLive(id).agent = agent;
        agent.once('close', () => onAgentClosed(rt, id));
        watchVm(rt, id, vm);
        rt.autoPause.arm(id);
      },
      destroy: (id: string) => this.destroy(id),
    };
    for (const rec of rt.store.list()) {
      try {
        await reconcileOne(rt, ops, rec);
      } catch (err) {
        rt.o.logger.error({ sandboxId: rec.id, err }, 'reconcile failed');
      }
    }
    await removeOrphans(rt);
  }

  /** The current guest image, or IMAGE_NOT_BUILT. */
  async image(): Promise<GuestImage> {
    const image = await this.rt.o.resolveImage();
    if (!image) throw new KilnError('IMAGE_NOT_BUILT', 'no guest image for the current recipe; run `kilnd image build`', { status: 409 });
    return image;
  }

  /** The user's sandboxes (warm-pool members are not listed). */
  list(): SandboxRecord[] {
    return this.rt.store.list().filter((r) => r.pool === null);
  }

  get(id: string): SandboxRecord {
    return this.rt.get(id);
  }

  /** Lifecycle events (paged, retained; they outlive their sandbox's row). */
  get eventLog(): Store['eventLog'] {
    return this.rt.store.eventLog;
  }

  /** The connected agent of a sandbox in a state that allows `action` (no lock: see useAgent). */
  agentFor(id: string, action: SandboxAction): GuestAgent {
    const rec = this.get(id);
    assertAction(id, rec.state, action);
    const agent = this.rt.live.get(id)?.agent;
    if (action === 'exec' || action === 'files') this.rt.activity.set(id, Date.now());
    if (!agent) throw new KilnError('AGENT_UNAVAILABLE', `sandbox ${id} has no connected agent`, { status: 503 });
    return agent;
  }

  /**
   * The agent for a guest call (an exec's start, a file call), held under the sandbox's shared
   * lock: it waits while a pause, snapshot or destroy runs or waits, and such an operation
   * waits for it (destroy excepted: it ends guest calls). The state is checked once the hold is
   * granted. Call `release` when the call no longer needs the VM as it was. A sandbox that
   * auto-pause paused is woken first (wake); its release counts as activity.
   */
  async useAgent(id: string, action: 'exec' | 'files'): Promise<AgentUse> {
    for (let attempt = 0; ; attempt++) {
      await this.wake(id);
      const unlock = await this.rt.locks.of(id).acquireShared();
      // Auto-paused again between the wake and the hold (only with a tiny autoPauseMs): wake again.
      if (attempt < 3 && this.get(id).pausedBy === 'auto') {
        unlock();
        continue;
      }
      const release: Release = () => {
        unlock();
        this.touch(id);
      };
      try {
        return { agent: this.agentFor(id, action), rec: this.get(id), release };
      } catch (err) {
        release();
        throw err;
      }
    }
  }

  /** Runs one guest call under the shared lock (see useAgent). */
  async withAgent<T>(id: string, action: 'exec' | 'files', fn: (agent: GuestAgent) => Promise<T>): Promise<T> {
    const use = await this.useAgent(id, action);
    try {
      return await fn(use.agent);
    } finally {
      use.release();
    }
  }

  consoleLogPath(id: string): string {
    this.get(id);
    return this.rt.runDir(id).consoleLog;
  }

  /**
   * Creates a sandbox (from the warm pool when it can). Validation errors throw before anything
   * is created. With `wait` (the default) resolves once it is running, or rejects with the failed step.
   */
  create(input: SpecInput, opts: CreateOptions = {}): Promise<SandboxRecord> {
    return this.creator.create(input, opts);
  }

  /** The spec a create of this input (without a template) would have: its shape with kilnd's defaults. */
  specOf(input: SpecInput): SandboxSpec {
    return resolveSpec(input, this.rt.o.defaults);
  }

  /** Warm pool status: configured size and members ready to hand out. */
  poolStatus(): { size: number; ready: number; filling: number } {
    const pool = this.creator.pool;
    if (!pool) return { size: 0, ready: 0, filling: 0 };
    const m = this.rt.store.list().filter((r) => r.pool === pool.name);
    return { size: pool.size, ready: pool.ready().length, filling: m.filter((r) => r.state === 'creating').length };
  }

  /** Starts background work: filling the warm pool. */
  start(): void {
    this.creator.pool?.kick();
  }

  /** Runs a state-changing operation on a sandbox under its exclusive lock, with its VM. */
  private exclusive<T>(id: string, action: SandboxAction, fn: (rec: SandboxRecord & { vm: VmHandle }) => Promise<T>): Promise<T> {
    this.get(id);
    return this.rt.locks.of(id).runExclusive(async () => {
      const rec = this.get(id);
      assertAction(id, rec.state, action);
      if (this.rt.live.get(id)?.destroying) throw invalidState(id, 'being destroyed', action);
      if (!rec.vm) throw new KilnError('VM_NOT_STARTED', `sandbox ${id} has no VM`, { status: 409 });
      return fn(rec as SandboxRecord & { vm: VmHandle });
    });
  }

  /** Freezes the VM (vCPUs stop; memory, processes and files are kept) until resume: guest calls get INVALID_STATE meanwhile. */
  pause(id: string): Promise<SandboxRecord> {
    return this.exclusive(id, 'pause', async (rec) => {
      await this.rt.driver.pause(rec.vm);
      this.rt.setState(rec, 'paused', { pausedBy: 'user' });
      return rec;
    });
  }

  /** Resumes a paused VM (paused by the user or by auto-pause) and brings its wall clock back to the host's. */
  resume(id: string): Promise<SandboxRecord> {
    return this.exclusive(id, 'resume', async (rec) => {
      await resumeVm(this.rt, rec);
      return rec;
    });
  }

  /** Where a sandbox's scratch disk is and in which format (raw for cold boots, qcow2 for clones). */
  scratchOf(id: string): { path: string; format: 'raw' | 'qcow2' } {
    return scratchOf(this.rt.runDir(id));
  }

  /** Runs `fn` (a snapshot) with the sandbox running or paused, under its exclusive lock; resyncs the clock after. */
  withSnapshotable<T>(id: string, fn: (rec: SandboxRecord & { vm: VmHandle }) => Promise<T>): Promise<T> {
    return this.exclusive(id, 'snapshot', async (rec) => {
      const vols = rec.spec.volumes ?? [];
      if (vols.length > 0) {
        throw new KilnError(
          'VOLUME_ATTACHED',
          `sandbox ${id} has volumes attached (${vols.map((v) => v.name).join(', ')}): a snapshot holds the VM's memory and devices but not a volume's disk, and every fork of it would be another writer of that volume; snapshot a sandbox without volumes and attach them to its forks`,
          { status: 409 },
        );
      }
      const out = await fn(rec);
      if (rec.state === 'running') await this.rt.live.get(id)?.agent?.configure({ timeEpochMs: Date.now() }).catch(() => undefined);
      return out;
    });
  }

  /**
   * Destroys a sandbox and everything it owns; concurrent calls share one destruction. A
   * creation in progress is cancelled; a snapshot, pause or resume in progress is waited for;
   * guest calls in progress end with the agent.
   */
  async destroy(id: string): Promise<void> {
    const rt = this.rt;
    const rec = this.get(id);
    const l = rt.liveOf(id);
    if (l.destroying) return l.destroying;
    assertAction(id, rec.state, 'destroy');
    l.destroying = (async () => {
      l.abort.abort();
      rt.expiry.clear(id);
      if (l.creating) await l.creating.catch(() => undefined);
      await rt.locks.of(id).runExclusive(
        async () => {
          const cur = rt.store.get(id);
          if (!cur) return;
          const wasRunning = cur.state === 'running';
          if (cur.state !== 'stopping') rt.setState(cur, 'stopping');
          // A volume's next holder finds a clean filesystem (flushed, unmounted) when it can.
          if (wasRunning && cur.vm && cur.spec.volumes?.length) await rt.o.volumes?.beforeStop(id, l.agent);
          l.agent?.close();
          l.agent = null;
          if (cur.vm) await rt.driver.stop(cur.vm, { timeoutMs: rt.o.stopTimeoutMs ?? 3000 });
          await rt.releaseResources(id);
          rt.setState(cur, 'destroyed');
          rt.store.delete(id);
        },
        { waitForShared: false },
      );
      rt.forget(id);
    })();
    return l.destroying;
  }

  /** Every row, warm-pool members included (lifecycle/reaper.ts). */
  records(): SandboxRecord[] {
    return this.rt.store.list();
  }

  /** The connected agent, without counting as activity (heartbeat). */
  liveAgent(id: string): GuestAgent | null {
    return this.rt.live.get(id)?.agent ?? null;
  }

  /**
   * Counts activity on a sandbox that does not go through useAgent (a terminal's bytes, proxied
   * traffic): resets its idle clocks (idle timeout, auto-pause).
   */
  touch(id: string): void {
    if (this.rt.live.has(id)) this.rt.activity.set(id, Date.now());
  }

  /**
   * Resolves once the sandbox can serve guest traffic: a sandbox that auto-pause paused is
   * resumed (concurrent wakes share one resume; sandbox/sleep.ts). Counts as activity. A
   * sandbox in any other state is returned as it is (one the user paused stays paused: the
   * guest call then fails with INVALID_STATE, as before auto-pause). Unknown id: SANDBOX_NOT_FOUND.
   */
  wake(id: string): Promise<SandboxRecord> {
    return wake(this.rt, id);
  }

  /**
   * Keeps the sandbox from auto-pausing while a guest call lasts (an exec, an attached terminal,
   * followed output, a long proxied connection); the release counts as activity. Call it after wake.
   */
  hold(id: string): Release {
    return hold(this.rt, id);
  }

  lastActivityAt(id: string): number | null {
    return this.rt.activity.get(id) ?? null;
  }

  /** Sets the remaining lifetime to `timeoutMs` from now (0 = no timeout). */
  setTimeout(id: string, timeoutMs: number): SandboxRecord {
    const rt = this.rt;
    const rec = this.get(id);
    assertAction(id, rec.state, 'timeout');
    if (rt.live.get(id)?.destroying) throw invalidState(id, 'being destroyed', 'timeout');
    // While auto-paused the clock is stopped (sandbox/usage.ts): the lifetime counts from the wake.
    const autoPaused = rec.pausedBy === 'auto' && rec.pausedAt != null;
    const from = autoPaused ? (rec.pausedAt as number) : Date.now();
    rec.expiresAt = timeoutMs > 0 ? from + timeoutMs : null;
    rec.updatedAt = Date.now();
    rt.store.update(rec);
    rt.store.addEvent(id, 'timeout-set', { timeoutMs, expiresAt: rec.expiresAt, ...(autoPaused ? { autoPaused } : {}) });
    if (rt.live.has(id) && !autoPaused) rt.expiry.arm(id, rec.expiresAt);
    return rec;
  }

  /** Destroys a sandbox whose idle timeout passed. */
  async expireIdle(id: string, idleMs: number): Promise<void> {
    if (this.rt.live.get(id)?.destroying) return;
    this.rt.store.addEvent(id, 'idle-timeout', { idleMs });
    await this.destroy(id);
  }

  /** Fails a live sandbox for `error` (e.g. an unresponsive guest): kills its VM and reclaims everything. */
  fail(id: string, error: SandboxError): Promise<void> {
    return failSandbox(this.rt, id, error);
  }

  /** Garbage collection on demand: removes orphans; a line per thing removed. */
  collect(): Promise<string[]> {
    return removeOrphans(this.rt);
  }

  /** Stops the manager. VMs keep running (re-adopted at next start) unless destroyAll. */
  async shutdown(opts: { destroyAll?: boolean } = {}): Promise<void> {
    const rt = this.rt;
    rt.closed = true;
    await this.creator.pool?.stop();
    // Warm-pool members belong to no one: never leave them behind.
    for (const rec of rt.store.list().filter((r) => r.pool !== null)) await this.destroy(rec.id).catch(() => undefined);
    rt.expiry.clearAll();
    rt.autoPause.clearAll();
    if (opts.destroyAll) {
      for (const id of [...rt.live.keys()]) await this.destroy(id).catch(() => undefined);
      for (const rec of rt.store.list()) await this.destroy(rec.id).catch(() => undefined);
    }
    for (const live of rt.live.values()) {
      live.abort.abort();
      if (live.creating) await live.creating.catch(() => undefined);
      live.agent?.close();
    }
    rt.live.clear();
  }
}
