/**
 * Making a sandbox: from the warm pool when one of the default shape is ready (its hand-over
 * under the member's operation lock), otherwise through the named creation steps, with the
 * state, events and failure reported on the way.
 */
import { KilnError } from '../errors.js';
import { checkCapacity } from '../lifecycle/capacity.js';
import { verifyAfterCreate } from '../lifecycle/deferred-check.js';
import { onAgentClosed, watchVm } from '../lifecycle/vm-exit.js';
import { creationSteps, type CreateCtx, type StepHost } from './create-steps.js';
import { hostKey, newSandboxId } from './ids.js';
import { WarmPool } from './pool.js';
import type { Live, SandboxRuntime } from './runtime.js';
import { resolveSpec, SPEC_LIMITS, withTemplateShape, type SpecInput } from './spec.js';
import { runSteps, StepFailedError } from './steps.js';
import type { SandboxRecord, SandboxSpec } from './types.js';

const isDefaultShape = (s: SandboxSpec): boolean =>
  s.memoryMiB === SPEC_LIMITS.memoryMiB.default && s.vcpus === SPEC_LIMITS.vcpus.default && s.diskGiB === SPEC_LIMITS.diskGiB.default;

export interface CreateOptions {
  wait?: boolean;
  pool?: string;
  /** Admission of the caller (tenant limits): throws to refuse; returns the release of its reservation. */
  admit?: (spec: SandboxSpec) => () => void;
  /** Called with the new sandbox's id as soon as it is the caller's (same tick as its row). */
  own?: (id: string) => void;
  /** The caller's tenant (null: the admin): volumes and templates are named in its namespace. */
  tenant?: string | null;
}

export class SandboxCreator {
  readonly pool: WarmPool | null;
  private readonly stepHost: StepHost;

  constructor(
    private readonly rt: SandboxRuntime,
    destroy: (id: string) => Promise<void>,
  ) {
    const o = rt.o;
    this.stepHost = {
      store: o.store,
      driver: o.driver,
      connectAgent: o.connectAgent,
      templates: o.templates ?? null,
      network: o.network ?? null,
      volumes: o.volumes ?? null,
      registry: o.registry ?? null,
      resolveImage: () => o.resolveImage(),
      createScratchDisk: (p, g) => o.createScratchDisk(p, g),
      bootTimeoutMs: o.bootTimeoutMs ?? 90_000,
      dockerReadyTimeoutMs: o.dockerReadyTimeoutMs ?? 180_000,
      restoredDockerCheckMs: o.restoredDockerCheckMs ?? 30_000,
      verifyLater: (id, what, check) => verifyAfterCreate(rt, id, what, check),
      watchVm: (id, vm) => watchVm(rt, id, vm),
      attachAgent: (id, agent) => {
        const live = rt.live.get(id);
        if (live) live.agent = agent;
      },
      consoleTail: (id) => rt.consoleTail(id),
      warn: (id, msg, err) => rt.log(id).warn({ err }, msg),
    };
    this.pool =
      (o.poolSize ?? 0) > 0
        ? new WarmPool('default', o.poolSize ?? 0, {
            members: (name) => o.store.list().filter((r) => r.pool === name && (r.state === 'creating' || r.state === 'running')),
            createMember: async (name) => {
              const member = await this.create({ timeoutMs: 0 }, { pool: name });
              // Off the request path, so run one command now: a restored guest's first exec is
              // several times slower than the next (TCG translates the agent's spawn path and
              // the kernel's fork/exec once per VM); the claimer's first exec is then a warm one.
              try {
                await rt.live.get(member.id)?.agent?.exec({ argv: ['true'] }, {}).result;
              } catch {
                // Only a warm-up: the member is usable either way.
              }
            },
            // Only a member that is still the pool's: never a sandbox that became someone's.
            discard: async (id) => {
              if ((o.store.get(id)?.pool ?? null) !== null) await destroy(id);
            },
            log: o.logger,
          })
        : null;
  }

  /**
   * Creates a sandbox. Validation errors throw before anything is created. With `wait`
   * (the default) resolves once it is running, or rejects with the failed step.
   */
  async create(input: SpecInput, opts: CreateOptions = {}): Promise<SandboxRecord> {
    const rt = this.rt;
    if (rt.closed) throw new KilnError('SHUTTING_DOWN', 'kilnd is shutting down', { status: 503 });
    const defaults: { workdir?: string; user?: string } = {};
    if (input.template !== undefined) {
      const shape = await rt.o.templates?.shapeOf(input.template, opts.tenant ?? null);
      if (shape?.workdir) defaults.workdir = shape.workdir;
      if (shape?.user) defaults.user = shape.user;
      input = await withTemplateShape(input, input.template, rt.o.templates ?? null, opts.tenant ?? null);
    }
    const spec = { ...resolveSpec(input, rt.o.defaults), ...defaults };
    // The owner's admission (tenant limits) holds a reservation until the sandbox is owned.
    const release = opts.admit?.(spec) ?? (() => undefined);
    try {
      return await this.createAdmitted(spec, opts);
    } finally {
      release();
    }
  }

  private async createAdmitted(spec: SandboxSpec, opts: CreateOptions): Promise<SandboxRecord> {
    const rt = this.rt;
    if (!opts.pool && this.pool && spec.template === null && isDefaultShape(spec) && !spec.volumes?.length) {
      const claimed = await this.pool.claim((member) => this.handOver(member, spec, opts.own));
      if (claimed) return claimed;
    }
    // Admission and the row insert below run with no await between them (atomic in this process).
    if (rt.o.capacity) checkCapacity(rt.store.list(), spec, rt.o.capacity);
    const now = Date.now();
    const rec: SandboxRecord = {
      id: newSandboxId((key) => rt.store.list().some((r) => hostKey(r.id) === key)),
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
    if (spec.volumes?.length) {
      if (!rt.o.volumes) throw new KilnError('VOLUMES_UNSUPPORTED', 'this kilnd has no volumes', { status: 501 });
      // Checked and held with no await before the row: two creates cannot both take a writer's place.
      rt.o.volumes.reserve(rec.id, opts.tenant ?? null, spec.volumes);
    }
    rt.store.insert(rec);
    opts.own?.(rec.id);
    rt.store.addEvent(rec.id, 'state', { state: 'creating', spec });
    rt.o.observer?.transition?.(rec, null, 'creating');
    const live = rt.newLive(rec.id);
    live.creating = this.runCreate(rec, live, opts.tenant ?? null);
    if (opts.wait === false) {
      live.creating.catch(() => undefined);
      return rt.get(rec.id);
    }
    await live.creating;
    return rt.get(rec.id);
  }

  /**
   * Makes a reserved warm-pool member the caller's: its policy, its clock, its owner. Runs under
   * the member's operation lock; a member that stopped being a ready member meanwhile (its VM
   * died, kilnd is shutting down) is refused, and the pool discards it.
   */
  private handOver(member: SandboxRecord, spec: SandboxSpec, own?: (id: string) => void): Promise<SandboxRecord> {
    const rt = this.rt;
    const id = member.id;
    const ready = (): SandboxRecord => {
      const cur = rt.store.get(id);
      if (cur?.state === 'running' && cur.pool !== null && !rt.live.get(id)?.destroying && !rt.closed) return cur;
      throw new KilnError('POOL_MEMBER_GONE', `warm pool member ${id} ended during its hand-over (${cur?.state ?? 'removed'})`, { status: 503 });
    };
    return rt.locks.of(id).runExclusive(async () => {
      ready();
      // The member was made with the default policy: the claimer's takes over, live.
      if (rt.network && spec.network) await rt.network.setPolicy(id, spec.network);
      // A member that waited long gets its clock checked again (it runs, but nothing adjusts it).
      const readyAt = ready().readyAt ?? Date.now();
      if (Date.now() - readyAt > 60_000) await rt.live.get(id)?.agent?.configure({ timeEpochMs: Date.now() });
      const rec = ready();
      const now = Date.now();
      const pool = rec.pool;
      Object.assign(rec, { spec, pool: null, createdAt: now, updatedAt: now, expiresAt: spec.timeoutMs > 0 ? now + spec.timeoutMs : null });
      rt.store.update(rec);
      own?.(id);
      rt.store.addEvent(id, 'claimed', { pool, spec, readyForMs: now - readyAt });
      rt.expiry.arm(id, rec.expiresAt);
      return rec;
    });
  }

  private async runCreate(rec: SandboxRecord, live: Live, tenant: string | null): Promise<void> {
    const rt = this.rt;
    const dir = rt.runDir(rec.id);
    const ctx: CreateCtx = { rec, runDir: dir.dir, scratch: dir.scratchRaw, image: null, template: null, vm: null, agent: null, tenant };
    try {
      // The volumes step exists only for a sandbox that has volumes (no empty step in every create's events).
      const steps = creationSteps(this.stepHost).filter((s) => s.name !== 'volumes' || (rec.spec.volumes?.length ?? 0) > 0);
      await runSteps(steps, ctx, live.abort.signal, {
        onStepStart: (name) => {
          rec.step = name;
          rec.updatedAt = Date.now();
          rt.store.update(rec);
        },
        onStepDone: (name, durationMs) => {
          rt.store.addEvent(rec.id, 'step', { step: name, durationMs });
        },
        onUndoError: (name, err) => rt.log(rec.id).error({ err, step: name }, 'undo failed'),
      });
      rt.setState(rec, 'running', { readyAt: Date.now(), step: null });
      rt.store.addEvent(rec.id, 'ready', { createMs: (rec.readyAt ?? 0) - rec.createdAt });
      live.agent = ctx.agent;
      ctx.agent?.once('close', () => onAgentClosed(rt, rec.id));
      if (rt.live.get(rec.id) === live) rt.expiry.arm(rec.id, rec.expiresAt);
    } catch (err) {
      const e = err instanceof StepFailedError ? err : new StepFailedError(rec.step ?? 'create', err);
      live.agent = null;
      const fresh = rt.store.get(rec.id);
      if (fresh && fresh.state === 'creating') {
        Object.assign(rec, fresh);
        rec.vm = null;
        rec.error = { code: e.code, message: e.message, step: e.step };
        rt.setState(rec, 'failed');
      }
      rt.log(rec.id).warn({ err: e }, 'create failed');
      throw e;
    } finally {
      live.creating = null;
    }
  }
}
