/**
 * The sandbox manager: owns every sandbox's lifecycle. Creation runs as named steps with
 * undos; a VM that dies is noticed and its resources reclaimed; on start-up the manager
 * reconciles the store with what is really running (adopt the live, clean up the dead,
 * remove orphans that carry our marker under our state directory).
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { KilnError, sandboxNotFound, toKilnError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { NetworkService } from '../network/service.js';
import type { VmExit, VmHandle, VmmDriver } from '../vmm/driver.js';
import { vmMarker } from '../vmm/qemu.js';
import { findProcesses, signalProcess } from '../util/proc.js';
import type { ConnectAgent, GuestAgent, GuestImage } from './guest-agent.js';
import { newSandboxId, isSandboxId } from './ids.js';
import type { ManagerObserver } from './observer.js';
import { resolveSpec, type SpecInput } from './spec.js';
import { assertAction, assertTransition, type SandboxAction } from './state-machine.js';
import { runSteps, StepFailedError } from './steps.js';
import { creationSteps, type CreateCtx, type StepHost, type TemplateSource } from './create-steps.js';
import type { SandboxRecord, SandboxSpec, SandboxState } from './types.js';
import { WarmPool } from './pool.js';
import { SPEC_LIMITS } from './spec.js';
import { checkCapacity, type CapacityLimits } from '../lifecycle/capacity.js';
import { classifyVmExit } from '../lifecycle/exit-reason.js';
import type { SandboxError } from './types.js';

/** How long a failed after-create check waits to see whether the VM itself ended. */
const VM_EXIT_GRACE_MS = 1000;

/** True when `exit` settles within `ms`. */
async function exitsWithin(exit: Promise<VmExit>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([exit.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

const isDefaultShape = (s: SandboxSpec): boolean =>
  s.memoryMiB === SPEC_LIMITS.memoryMiB.default && s.vcpus === SPEC_LIMITS.vcpus.default && s.diskGiB === SPEC_LIMITS.diskGiB.default;

export interface ManagerOptions {
  stateDir: string;
  store: Store;
  driver: VmmDriver;
  logger: Logger;
  resolveImage(): Promise<GuestImage | null>;
  createScratchDisk(path: string, sizeGiB: number): Promise<void>;
  connectAgent: ConnectAgent;
  /** Warm pool of the default shape: this many restored, unassigned sandboxes. Default 0. */
  poolSize?: number;
  /** Template snapshots to restore from; null = always cold boot. */
  templates?: TemplateSource | null;
  /** Sandbox networking (netns, TAP, policy); null/absent = sandboxes get no network. */
  network?: NetworkService | null;
  /** Kernel boot to agent answer, per attempt (a hung boot is retried once). Default 90 s. */
  bootTimeoutMs?: number;
  /** Agent answer to dockerd answering /_ping. Default 180 s. */
  dockerReadyTimeoutMs?: number;
  /**
   * A sandbox restored from a boot template is handed out before its dockerd (verified ready
   * when the template was snapshotted) answers again; this long it then has. Default 30 s.
   */
  restoredDockerCheckMs?: number;
  /** Grace for QEMU to quit before SIGKILL on destroy. Default 3 s. */
  stopTimeoutMs?: number;
  defaults?: Partial<SandboxSpec>;
  /** Told of state changes, watched VMs and released sandboxes (audit, logs, metrics). */
  observer?: ManagerObserver;
  /** Admission limits (lifecycle/capacity.ts); absent = no limits. */
  capacity?: CapacityLimits;
}

interface Live {
  agent: GuestAgent | null;
  abort: AbortController;
  creating: Promise<void> | null;
  destroying: Promise<void> | null;
  expiryTimer: NodeJS.Timeout | null;
}

export class SandboxManager {
  private readonly live = new Map<string, Live>();
  /** Sandbox id → time of the last exec/file call (idle timeouts, lifecycle/idle.ts). */
  private readonly activity = new Map<string, number>();
  private readonly sandboxesDir: string;
  private closed = false;

  private readonly stepHost: StepHost;
  private readonly pool: WarmPool | null;

  constructor(private readonly o: ManagerOptions) {
    this.sandboxesDir = join(o.stateDir, 'sandboxes');
    this.stepHost = {
      store: o.store,
      driver: o.driver,
      connectAgent: o.connectAgent,
      templates: o.templates ?? null,
      network: o.network ?? null,
      resolveImage: () => o.resolveImage(),
      createScratchDisk: (p, g) => o.createScratchDisk(p, g),
      bootTimeoutMs: o.bootTimeoutMs ?? 90_000,
      dockerReadyTimeoutMs: o.dockerReadyTimeoutMs ?? 180_000,
      restoredDockerCheckMs: o.restoredDockerCheckMs ?? 30_000,
      verifyLater: (id, what, check) => this.verifyLater(id, what, check),
      watchVm: (id, vm) => this.watchVm(id, vm),
      attachAgent: (id, agent) => {
        const live = this.live.get(id);
        if (live) live.agent = agent;
      },
      consoleTail: (id) => this.consoleTail(id),
      warn: (id, msg, err) => this.log(id).warn({ err }, msg),
    };
    this.pool =
      (o.poolSize ?? 0) > 0
        ? new WarmPool('default', o.poolSize ?? 0, {
            members: (name) => this.o.store.list().filter((r) => r.pool === name && (r.state === 'creating' || r.state === 'running')),
            createMember: async (name) => {
              const member = await this.create({ timeoutMs: 0 }, { pool: name });
              // Off the request path, so run one command now: a restored guest's first exec is
              // several times slower than the next (TCG translates the agent's spawn path and
              // the kernel's fork/exec once per VM); the claimer's first exec is then a warm one.
              try {
                await this.live.get(member.id)?.agent?.exec({ argv: ['true'] }, {}).result;
              } catch {
                // Only a warm-up: the member is usable either way.
              }
            },
            log: o.logger,
          })
        : null;
  }

  get driver(): VmmDriver {
    return this.o.driver;
  }

  /** Reconciles the store with reality. Call once at daemon start. */
  async init(): Promise<void> {
    await mkdir(this.sandboxesDir, { recursive: true, mode: 0o700 });
    for (const rec of this.o.store.list()) {
      try {
        await this.reconcileOne(rec);
      } catch (err) {
        this.o.logger.error({ sandboxId: rec.id, err }, 'reconcile failed');
      }
    }
    await this.removeOrphans();
  }

  /** The current guest image, or IMAGE_NOT_BUILT. */
  async image(): Promise<GuestImage> {
    const image = await this.o.resolveImage();
    if (!image) throw new KilnError('IMAGE_NOT_BUILT', 'no guest image for the current recipe; run `kiln image build`', { status: 409 });
    return image;
  }

  /** The user's sandboxes (warm-pool members are not listed). */
  list(): SandboxRecord[] {
    return this.o.store.list().filter((r) => r.pool === null);
  }

  get(id: string): SandboxRecord {
    const rec = isSandboxId(id) ? this.o.store.get(id) : null;
    if (!rec) throw sandboxNotFound(id);
    return rec;
  }

  /** Lifecycle events (paged, retained; they outlive their sandbox's row). */
  get eventLog(): Store['eventLog'] {
    return this.o.store.eventLog;
  }

  events(id?: string, afterSeq = 0): ReturnType<Store['events']> {
    if (id !== undefined) this.get(id);
    return this.o.store.events(id, afterSeq);
  }

  /** The connected agent of a sandbox in a state that allows `action`. */
  agentFor(id: string, action: SandboxAction): GuestAgent {
    const rec = this.get(id);
    assertAction(id, rec.state, action);
    const agent = this.live.get(id)?.agent;
    if (action === 'exec' || action === 'files') this.activity.set(id, Date.now());
    if (!agent) throw new KilnError('AGENT_UNAVAILABLE', `sandbox ${id} has no connected agent`, { status: 503 });
    return agent;
  }

  consoleLogPath(id: string): string {
    this.get(id);
    return join(this.sandboxesDir, id, 'console.log');
  }

  /**
   * Creates a sandbox. Validation errors throw before anything is created. With `wait`
   * (the default) resolves once it is running, or rejects with the failed step.
   */
  async create(input: SpecInput, opts: { wait?: boolean; pool?: string } = {}): Promise<SandboxRecord> {
    if (this.closed) throw new KilnError('SHUTTING_DOWN', 'kilnd is shutting down', { status: 503 });
    if (input.template !== undefined) input = await this.withTemplateShape(input, input.template);
    const spec = resolveSpec(input, this.o.defaults);
    if (!opts.pool && this.pool && spec.template === null && isDefaultShape(spec)) {
      const member = this.pool.available();
      if (member) return this.claim(member, spec);
    }
    // Admission and the row insert below run with no await between them (atomic in this process).
    if (this.o.capacity) checkCapacity(this.o.store.list(), spec, this.o.capacity);
    const now = Date.now();
    const rec: SandboxRecord = {
      id: newSandboxId(),
      state: 'creating',
      spec,
      imageHash: null,
      step: null,
      vm: null,
      error: null,
      createdAt: now,
      updatedAt: now,
      readyAt: null,
      expiresAt: spec.timeoutMs > 0 ? now + spec.timeoutMs : null,
      pool: opts.pool ?? null,
    };
    this.o.store.insert(rec);
    this.o.store.addEvent(rec.id, 'state', { state: 'creating', spec });
    this.o.observer?.transition?.(rec, null, 'creating');
    const live: Live = { agent: null, abort: new AbortController(), creating: null, destroying: null, expiryTimer: null };
    this.live.set(rec.id, live);
    live.creating = this.runCreate(rec, live);
    if (opts.wait === false) {
      live.creating.catch(() => undefined);
      return this.get(rec.id);
    }
    await live.creating;
    return this.get(rec.id);
  }

  /** Hands a warm-pool member to the caller: it becomes an ordinary sandbox with this spec. */
  private async claim(member: SandboxRecord, spec: SandboxSpec): Promise<SandboxRecord> {
    const now = Date.now();
    const pool = member.pool;
    // The member was made with the default policy: the claimer's takes over, live.
    if (this.o.network && spec.network) await this.o.network.setPolicy(member.id, spec.network);
    Object.assign(member, { spec, pool: null, createdAt: now, updatedAt: now, expiresAt: spec.timeoutMs > 0 ? now + spec.timeoutMs : null });
    this.o.store.update(member);
    this.o.store.addEvent(member.id, 'claimed', { pool, spec, readyForMs: now - (member.readyAt ?? now) });
    this.armExpiry(member.id);
    this.pool?.kick();
    // A member that waited long gets its clock checked again (it runs, but nothing adjusts it).
    if (now - (member.readyAt ?? now) > 60_000) await this.live.get(member.id)?.agent?.configure({ timeEpochMs: Date.now() });
    return member;
  }

  /** Warm pool status: configured size and members ready to hand out. */
  poolStatus(): { size: number; ready: number; filling: number } {
    if (!this.pool) return { size: 0, ready: 0, filling: 0 };
    const m = this.o.store.list().filter((r) => r.pool === this.pool?.name);
    return { size: this.pool.size, ready: m.filter((r) => r.state === 'running').length, filling: m.filter((r) => r.state === 'creating').length };
  }

  /** Starts background work: filling the warm pool. */
  start(): void {
    this.pool?.kick();
  }

  /** A create that names a template takes the template's shape; a conflicting shape is refused. */
  private async withTemplateShape(input: SpecInput, name: string): Promise<SpecInput> {
    const shape = this.o.templates ? await this.o.templates.shapeOf(name) : null;
    if (!shape) throw new KilnError('TEMPLATE_NOT_FOUND', `template ${name} not found`, { status: 404, details: { field: 'template' } });
    for (const k of ['memoryMiB', 'vcpus', 'diskGiB'] as const) {
      if (input[k] !== undefined && input[k] !== shape[k]) {
        throw new KilnError('INVALID_ARGUMENT', `${k} ${input[k]} conflicts with template ${name} (${k} ${shape[k]}); omit it`, { status: 400, details: { field: k } });
      }
    }
    return { ...input, ...shape };
  }

  private log(id: string): Logger {
    return this.o.logger.child({ sandboxId: id });
  }

  private setState(rec: SandboxRecord, state: SandboxState, extra: Partial<SandboxRecord> = {}): void {
    assertTransition(rec.id, rec.state, state);
    const from = rec.state;
    Object.assign(rec, extra, { state, updatedAt: Date.now() });
    this.o.store.update(rec);
    this.o.store.addEvent(rec.id, 'state', { state, ...(rec.error && state === 'failed' ? { error: rec.error } : {}) });
    this.log(rec.id).info({ state }, 'state');
    this.o.observer?.transition?.(rec, from, state);
  }

  private async runCreate(rec: SandboxRecord, live: Live): Promise<void> {
    const ctx: CreateCtx = {
      rec,
      runDir: join(this.sandboxesDir, rec.id),
      scratch: join(this.sandboxesDir, rec.id, 'scratch.img'),
      image: null,
      template: null,
      vm: null,
      agent: null,
    };
    try {
      await runSteps(creationSteps(this.stepHost), ctx, live.abort.signal, {
        onStepStart: (name) => {
          rec.step = name;
          rec.updatedAt = Date.now();
          this.o.store.update(rec);
        },
        onStepDone: (name, durationMs) => {
          this.o.store.addEvent(rec.id, 'step', { step: name, durationMs });
        },
        onUndoError: (name, err) => this.log(rec.id).error({ err, step: name }, 'undo failed'),
      });
      this.setState(rec, 'running', { readyAt: Date.now(), step: null });
      this.o.store.addEvent(rec.id, 'ready', { createMs: (rec.readyAt ?? 0) - rec.createdAt });
      live.agent = ctx.agent;
      ctx.agent?.once('close', () => this.onAgentClosed(rec.id));
      this.armExpiry(rec.id);
    } catch (err) {
      const e = err instanceof StepFailedError ? err : new StepFailedError(rec.step ?? 'create', err);
      live.agent = null;
      const fresh = this.o.store.get(rec.id);
      if (fresh && fresh.state === 'creating') {
        Object.assign(rec, fresh);
        rec.vm = null;
        rec.error = { code: e.code, message: e.message, step: e.step };
        this.setState(rec, 'failed');
      }
      this.log(rec.id).warn({ err: e }, 'create failed');
      throw e;
    } finally {
      live.creating = null;
    }
  }

  private consoleTail(id: string, bytes = 600): string {
    if (this.o.observer?.consoleTail) return this.o.observer.consoleTail(id, bytes);
    try {
      return readFileSync(join(this.sandboxesDir, id, 'console.log'), 'utf8').slice(-bytes);
    } catch {
      return '';
    }
  }

  private watchVm(id: string, vm: VmHandle): void {
    this.o.observer?.vmWatched?.(id, vm);
    void this.o.driver.wait(vm).then(async (exit) => {
      // A VM that ended itself (panic, poweroff): a moment lets the console collector read its last words.
      if (exit.signal === null) await new Promise((r) => setTimeout(r, 300));
      if (!this.closed) this.onVmExit(id, vm, exit);
    });
  }

  private onVmExit(id: string, vm: VmHandle, exit: VmExit): void {
    const rec = this.o.store.get(id);
    const live = this.live.get(id);
    if (!rec || rec.vm?.pid !== vm.pid || rec.vm.startTime !== vm.startTime) return; // replaced or gone
    if (live?.destroying || rec.state === 'stopping' || rec.state === 'destroyed') return;
    this.o.store.addEvent(id, 'vm-exited', { ...exit });
    if (rec.state === 'creating') {
      live?.abort.abort();
      return;
    }
    if (rec.state !== 'running' && rec.state !== 'paused') return;
    rec.error = classifyVmExit(exit, this.consoleTail(id, 8192));
    rec.vm = null;
    this.setState(rec, 'failed');
    void this.releaseResources(id);
  }

  private onAgentClosed(id: string): void {
    const live = this.live.get(id);
    if (live) live.agent = null;
    const rec = this.o.store.get(id);
    if (rec?.state === 'running') this.log(id).warn('agent channel closed');
  }

  private armExpiry(id: string): void {
    const rec = this.o.store.get(id);
    const live = this.live.get(id);
    if (!rec?.expiresAt || !live) return;
    if (live.expiryTimer) clearTimeout(live.expiryTimer);
    const delay = Math.max(0, rec.expiresAt - Date.now());
    live.expiryTimer = setTimeout(() => {
      this.o.store.addEvent(id, 'timeout', { expiresAt: rec.expiresAt });
      this.destroy(id).catch((err: unknown) => this.log(id).error({ err }, 'destroy on timeout failed'));
    }, Math.min(delay, 2 ** 31 - 1));
    live.expiryTimer.unref();
  }

  /** Freezes the VM (vCPUs stop; memory, processes and files are kept). */
  async pause(id: string): Promise<SandboxRecord> {
    const rec = this.get(id);
    assertAction(id, rec.state, 'pause');
    if (!rec.vm) throw new KilnError('VM_NOT_STARTED', `sandbox ${id} has no VM`, { status: 409 });
    await this.o.driver.pause(rec.vm);
    this.setState(rec, 'paused');
    return rec;
  }

  /** Resumes a paused VM and brings its wall clock back to the host's. */
  async resume(id: string): Promise<SandboxRecord> {
    const rec = this.get(id);
    assertAction(id, rec.state, 'resume');
    if (!rec.vm) throw new KilnError('VM_NOT_STARTED', `sandbox ${id} has no VM`, { status: 409 });
    await this.o.driver.resume(rec.vm);
    this.setState(rec, 'running');
    await this.live.get(id)?.agent?.configure({ timeEpochMs: Date.now() });
    return rec;
  }

  /** Where a sandbox's scratch disk is and in which format (raw for cold boots, qcow2 for clones). */
  scratchOf(id: string): { path: string; format: 'raw' | 'qcow2' } {
    const qcow = join(this.sandboxesDir, id, 'scratch.qcow2');
    return existsSync(qcow) ? { path: qcow, format: 'qcow2' } : { path: join(this.sandboxesDir, id, 'scratch.img'), format: 'raw' };
  }

  /** Runs `fn` with the sandbox's VM paused-or-running checked for a snapshot; resync the clock after. */
  async withSnapshotable<T>(id: string, fn: (rec: SandboxRecord & { vm: VmHandle }) => Promise<T>): Promise<T> {
    const rec = this.get(id);
    assertAction(id, rec.state, 'snapshot');
    if (!rec.vm) throw new KilnError('VM_NOT_STARTED', `sandbox ${id} has no VM`, { status: 409 });
    const out = await fn(rec as SandboxRecord & { vm: VmHandle });
    if (rec.state === 'running') await this.live.get(id)?.agent?.configure({ timeEpochMs: Date.now() }).catch(() => undefined);
    return out;
  }

  /** Destroys a sandbox and everything it owns; concurrent calls share one destruction. */
  async destroy(id: string): Promise<void> {
    const rec = this.get(id);
    let live = this.live.get(id);
    if (!live) {
      live = { agent: null, abort: new AbortController(), creating: null, destroying: null, expiryTimer: null };
      this.live.set(id, live);
    }
    if (live.destroying) return live.destroying;
    assertAction(id, rec.state, 'destroy');
    const l = live;
    l.destroying = (async () => {
      l.abort.abort();
      if (l.expiryTimer) clearTimeout(l.expiryTimer);
      if (l.creating) await l.creating.catch(() => undefined);
      const cur = this.o.store.get(id);
      if (!cur) return;
      if (cur.state !== 'stopping') this.setState(cur, 'stopping');
      l.agent?.close();
      l.agent = null;
      if (cur.vm) await this.o.driver.stop(cur.vm, { timeoutMs: this.o.stopTimeoutMs ?? 3000 });
      await this.releaseResources(id);
      this.setState(cur, 'destroyed');
      this.o.store.delete(id);
      this.live.delete(id);
    })();
    return l.destroying;
  }

  /** Every row, warm-pool members included (lifecycle/reaper.ts). */
  records(): SandboxRecord[] {
    return this.o.store.list();
  }

  /** The connected agent, without counting as activity (heartbeat). */
  liveAgent(id: string): GuestAgent | null {
    return this.live.get(id)?.agent ?? null;
  }

  lastActivityAt(id: string): number | null {
    return this.activity.get(id) ?? null;
  }

  /** Sets the remaining lifetime to `timeoutMs` from now (0 = no timeout). */
  setTimeout(id: string, timeoutMs: number): SandboxRecord {
    const rec = this.get(id);
    assertAction(id, rec.state, 'timeout');
    rec.expiresAt = timeoutMs > 0 ? Date.now() + timeoutMs : null;
    rec.updatedAt = Date.now();
    this.o.store.update(rec);
    this.o.store.addEvent(id, 'timeout-set', { timeoutMs, expiresAt: rec.expiresAt });
    const live = this.live.get(id);
    if (live?.expiryTimer) clearTimeout(live.expiryTimer);
    if (live) live.expiryTimer = null;
    this.armExpiry(id);
    return rec;
  }

  /** Destroys a sandbox whose idle timeout passed. */
  async expireIdle(id: string, idleMs: number): Promise<void> {
    if (this.live.get(id)?.destroying) return;
    this.o.store.addEvent(id, 'idle-timeout', { idleMs });
    await this.destroy(id);
  }

  /**
   * A check that goes on after the create returned (dockerd of a restored clone): its success is
   * an event, its failure fails the sandbox (once its creation has finished).
   */
  private verifyLater(id: string, what: string, check: Promise<unknown>): void {
    const t0 = Date.now();
    check.then(
      () => this.o.store.addEvent(id, what, { checkedAfterCreateMs: Date.now() - t0 }),
      async (err: unknown) => {
        const e = toKilnError(err);
        this.o.store.addEvent(id, `${what}-failed`, { reason: e.message });
        for (let i = 0; i < 1200 && this.live.get(id)?.creating; i++) await new Promise((r) => setTimeout(r, 50));
        // A check cut short by the VM itself ending (killed, panicked) is not dockerd's fault: the
        // VM's exit is the reason, and its watcher reports it. The channel closes a moment before
        // the VMM's exit is seen, so give that a moment.
        const vm = this.o.store.get(id)?.vm;
        if (vm && (await exitsWithin(this.o.driver.wait(vm), VM_EXIT_GRACE_MS))) return;
        await this.fail(id, { code: 'DOCKER_NOT_READY', message: `${what} check after the restore failed: ${e.message}`, step: what });
      },
    );
  }

  /** Fails a live sandbox for `error` (e.g. an unresponsive guest): kills its VM and reclaims everything. */
  async fail(id: string, error: SandboxError): Promise<void> {
    const rec = this.o.store.get(id);
    const live = this.live.get(id);
    if (!rec || (rec.state !== 'running' && rec.state !== 'paused') || live?.destroying || live?.creating) return;
    const vm = rec.vm;
    rec.error = error;
    rec.vm = null;
    this.setState(rec, 'failed');
    if (live) {
      live.agent?.close();
      live.agent = null;
    }
    if (vm) await this.o.driver.kill(vm).catch((err: unknown) => this.log(id).error({ err }, 'kill failed'));
    await this.releaseResources(id);
  }

  /** Garbage collection on demand: removes orphans; a line per thing removed. */
  collect(): Promise<string[]> {
    return this.removeOrphans();
  }

  private async releaseResources(id: string): Promise<void> {
    this.activity.delete(id);
    this.o.observer?.released?.(id);
    await this.o.network?.teardown(id);
    await rm(join(this.sandboxesDir, id), { recursive: true, force: true });
  }

  private async reconcileOne(rec: SandboxRecord): Promise<void> {
    const log = this.log(rec.id);
    const alive = rec.vm !== null && this.o.driver.isAlive(rec.vm);
    if (rec.pool !== null) {
      // A warm-pool member left by a crashed kilnd: nobody owns it; the pool refills itself.
      if (alive && rec.vm) await this.o.driver.kill(rec.vm);
      await this.releaseResources(rec.id);
      this.o.store.delete(rec.id);
      return;
    }
    if (rec.state === 'running' && alive && rec.vm) {
      try {
        const agent = await this.o.connectAgent(rec.vm.paths.agentSocket, { timeoutMs: 15_000 });
        const live: Live = { agent, abort: new AbortController(), creating: null, destroying: null, expiryTimer: null };
        this.live.set(rec.id, live);
        agent.once('close', () => this.onAgentClosed(rec.id));
        this.watchVm(rec.id, rec.vm);
        this.o.store.addEvent(rec.id, 'adopted', { pid: rec.vm.pid });
        log.info('adopted running sandbox');
        if (rec.expiresAt !== null && rec.expiresAt <= Date.now()) {
          this.o.store.addEvent(rec.id, 'timeout', { expiresAt: rec.expiresAt, whileDaemonDown: true });
          await this.destroy(rec.id);
        } else {
          this.armExpiry(rec.id);
        }
        return;
      } catch (err) {
        log.warn({ err }, 'running VM does not answer; destroying it');
        rec.error = { code: 'ADOPT_FAILED', message: `VM alive but its agent did not answer after kilnd restarted: ${toKilnError(err).message}` };
      }
    }
    if (alive && rec.vm) await this.o.driver.kill(rec.vm);
    await this.releaseResources(rec.id);
    if (rec.state === 'stopping' || rec.state === 'destroyed') {
      this.o.store.delete(rec.id);
      return;
    }
    if (rec.state !== 'failed') {
      rec.error ??=
        rec.state === 'creating'
          ? { code: 'DAEMON_RESTARTED', message: `kilnd stopped during creation (step ${rec.step ?? '?'}); nothing was kept`, ...(rec.step ? { step: rec.step } : {}) }
          : { code: 'VM_EXITED', message: 'the VM ended while kilnd was down' };
      rec.vm = null;
      this.setState(rec, 'failed');
    }
  }

  /** Removes run directories and kills VMMs under our state dir that no sandbox row owns. */
  private async removeOrphans(): Promise<string[]> {
    const removed: string[] = [];
    const known = new Set(this.o.store.list().map((r) => r.id));
    for (const p of findProcesses(`${this.sandboxesDir}/`)) {
      const m = /kiln-(sb-[0-9a-f]{12})/.exec(p.cmdline.join(' '));
      // Decide on the row as it is now: a create in progress inserted its row before its VMM.
      if (m?.[1] && !known.has(m[1]) && !this.o.store.get(m[1])) {
        this.o.logger.warn({ pid: p.pid, sandboxId: m[1] }, 'killing orphaned VMM');
        if (signalProcess(p, 'SIGKILL', vmMarker(m[1]))) removed.push(`vmm ${m[1]} pid ${p.pid}`);
      }
    }
    if (this.o.network) {
      for (const hex of await this.o.network.listNetworkOrphans(known)) {
        if (this.o.store.get(`sb-${hex}`)) continue;
        await this.o.network.cleanupNetwork(hex);
        removed.push(`network sb-${hex}`);
      }
    }
    if (!existsSync(this.sandboxesDir)) return removed;
    for (const name of await readdir(this.sandboxesDir)) {
      // A row inserted after `known` was read (a create in progress) is not an orphan.
      if (!known.has(name) && !this.o.store.get(name)) {
        this.o.logger.warn({ sandboxId: name }, 'removing orphaned sandbox directory');
        await rm(join(this.sandboxesDir, name), { recursive: true, force: true });
        removed.push(`run-dir ${name}`);
      }
    }
    return removed;
  }

  /** Stops the manager. VMs keep running (re-adopted at next start) unless destroyAll. */
  async shutdown(opts: { destroyAll?: boolean } = {}): Promise<void> {
    this.closed = true;
    await this.pool?.stop();
    // Warm-pool members belong to no one: never leave them behind.
    for (const rec of this.o.store.list().filter((r) => r.pool !== null)) await this.destroy(rec.id).catch(() => undefined);
    for (const [id, live] of this.live) {
      if (live.expiryTimer) clearTimeout(live.expiryTimer);
      if (opts.destroyAll) await this.destroy(id).catch(() => undefined);
    }
    if (opts.destroyAll) {
      for (const rec of this.o.store.list()) await this.destroy(rec.id).catch(() => undefined);
    }
    for (const live of this.live.values()) {
      live.abort.abort();
      if (live.creating) await live.creating.catch(() => undefined);
      live.agent?.close();
    }
    this.live.clear();
  }
}
