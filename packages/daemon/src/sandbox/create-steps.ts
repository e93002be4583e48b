/**
 * The named, ordered steps that make a sandbox, each with its undo. One list serves both
 * paths: a restore from a template (the fast path: qcow2 overlay over the template's disk,
 * RAM mapped copy-on-write from the template's memory file) and a cold boot (the fallback
 * when no valid template exists, said so in the events).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { KilnError, toKilnError } from '../errors.js';
import type { Store } from '../store/store.js';
import { applyGuestNetwork } from '../network/guest.js';
import { startGuestCtlSession, type GuestCtlSession } from './guest-ctl.js';
import type { NetworkService, SandboxNetwork } from '../network/service.js';
import type { VolumeService } from '../volume/service.js';
import type { RegistryService } from '../registry/service.js';
import type { TemplateManifest } from '../template/manifest.js';
import { TEMPLATE_HOSTNAME } from '../template/manifest.js';
import type { VmHandle, VmmDriver, VmSpec } from '../vmm/driver.js';
import { vmPaths } from '../vmm/driver.js';
import type { ConnectAgent, GuestAgent, GuestImage } from './guest-agent.js';
import { runDirLayout } from './run-dir.js';
import type { Step } from './steps.js';
import type { SandboxRecord, SandboxSpec } from './types.js';

export interface CreateCtx {
  rec: SandboxRecord;
  runDir: string;
  scratch: string;
  image: GuestImage | null;
  template: TemplateManifest | null;
  vm: VmHandle | null;
  agent: GuestAgent | null;
  /** The creating tenant (null: the admin): a named template is looked up in its namespace. */
  tenant?: string | null;
  /** The sandbox's network (null when kilnd runs without networking). */
  net?: SandboxNetwork | null;
  /** The network's second stage (veth, policy, resolver), built while the VMM starts; the guest runs only after it. */
  netComplete?: Promise<void> | null;
  /** Personalization and dockerd's ping through the guestctl port, started as early as the guest can take them. */
  guestCtl?: GuestCtlSession | null;
  /** The agent's connection, opened before a restored VM resumes (awaited by agent-connect). */
  agentConnecting?: Promise<GuestAgent> | null;
  /** Aborts that early connection (a failed launch that is retried, a cancelled create). */
  channelAbort?: AbortController;
}

/** Where templates come from; absent = always cold boot. */
export interface TemplateSource {
  /** The template to restore this sandbox from, or null with the reason; a named one in the tenant's namespace (its own, then shared). */
  find(spec: SandboxSpec, image: GuestImage, tenant?: string | null): Promise<{ template: TemplateManifest | null; reason: string }>;
  /** A per-VM copy-on-write disk over the template's frozen scratch disk. */
  createOverlay(template: TemplateManifest, path: string): Promise<void>;
  /** The shape of a named template (a create naming it takes its shape), or null; the tenant's own first, then shared. */
  shapeOf(name: string, tenant?: string | null): Promise<{ memoryMiB: number; vcpus: number; diskGiB: number; env?: Record<string, string>; workdir?: string; user?: string } | null>;
}

export interface StepHost {
  store: Store;
  driver: VmmDriver;
  connectAgent: ConnectAgent;
  templates: TemplateSource | null;
  /** Sandbox networking; null = sandboxes get no network. */
  network?: NetworkService | null;
  /** Persistent volumes (the last step attaches a sandbox's); null = none. */
  volumes?: VolumeService | null;
  /** The private registry (a step makes it reachable from the sandbox); null = none. */
  registry?: RegistryService | null;
  resolveImage(): Promise<GuestImage | null>;
  createScratchDisk(path: string, sizeGiB: number): Promise<void>;
  bootTimeoutMs: number;
  dockerReadyTimeoutMs: number;
  /** How long a sandbox restored from a boot template has for dockerd to answer, after its create returned. */
  restoredDockerCheckMs: number;
  /** Watches a check that runs on after the create returned; its failure fails the sandbox. */
  verifyLater(id: string, what: string, check: Promise<unknown>): void;
  /** Called once a VM process exists, so its death is noticed even during creation. */
  watchVm(id: string, vm: VmHandle): void;
  /** The agent is usable for this sandbox from now on. */
  attachAgent(id: string, agent: GuestAgent): void;
  consoleTail(id: string): string;
  warn(id: string, msg: string, err: unknown): void;
}

function vmSpec(ctx: CreateCtx): VmSpec {
  const image = ctx.image;
  if (!image) throw new KilnError('IMAGE_NOT_BUILT', 'image not resolved');
  const base: VmSpec = {
    id: ctx.rec.id,
    runDir: ctx.runDir,
    memoryMiB: ctx.rec.spec.memoryMiB,
    vcpus: ctx.rec.spec.vcpus,
    kernel: image.kernel,
    initrd: image.initrd,
    rootfs: image.rootfs,
    scratch: ctx.scratch,
    cmdline: image.cmdline,
    ...(ctx.net ? { net: ctx.net.vm } : {}),
  };
  const t = ctx.template;
  if (!t) return base;
  return {
    ...base,
    hostname: TEMPLATE_HOSTNAME,
    scratchFormat: 'qcow2',
    incoming: t.stateFile,
    ...(t.memFile ? { memory: { file: t.memFile, mode: 'clone' as const } } : {}),
  };
}

/**
 * A launch rarely dies before QEMU is usable: under load the old tool chain's child was seen
 * killed by SIGKILL (`unshare: sigprocmask unblock failed`, docs/hardening.md; cause not
 * found), and the launcher's fork can fail for a moment (EAGAIN, ENOMEM). The launcher
 * (vmm/jail.ts) names both in QEMU's log: `kiln-vmm-launch: fork: …`, `kiln-vmm-launch: … killed
 * by SIGKILL`; its other errors (a missing file, a bad option) would fail again. Such a launch
 * left no VM behind, so it is tried up to this many times, with fresh sockets.
 */
const LAUNCH_ATTEMPTS = 3;

async function launch(h: StepHost, ctx: CreateCtx, spec: VmSpec): Promise<VmHandle> {
  const t = ctx.template;
  // The guest runs only once its network policy is in place: a restored one at `cont` (its
  // VMM starts meanwhile), a booting one from its first instruction.
  const netComplete = ctx.netComplete ?? Promise.resolve();
  const beforeResume = async (vm: VmHandle) => {
    await Promise.all([openChannels(h, ctx, vm), netComplete]);
  };
  const once = async () => {
    if (t) return h.driver.restore(spec, { ignoreShared: t.sharedMemory, beforeResume });
    await netComplete;
    return h.driver.start(spec);
  };
  for (let attempt = 1; ; attempt++) {
    try {
      return await once();
    } catch (err) {
      // A network that could not be completed is the reason, not the restore it stopped.
      await netComplete;
      const e = toKilnError(err);
      if (attempt >= LAUNCH_ATTEMPTS || !/VMM_(START|RESTORE)_FAILED/.test(e.code) || !/kiln-vmm-launch: (fork:|.*killed by SIGKILL)/.test(e.message)) throw err;
      h.warn(ctx.rec.id, `the VMM launcher failed (attempt ${attempt} of ${LAUNCH_ATTEMPTS}); retrying`, err);
      h.store.addEvent(ctx.rec.id, 'vm-launch-retry', { attempt, reason: e.message.slice(0, 300) });
      ctx.channelAbort?.abort(err); // it must not connect to the next VM's sockets
      const p = vmPaths(ctx.runDir);
      for (const f of [p.qmpSocket, p.agentSocket, p.guestctlSocket, p.consoleSocket, p.logsSocket]) if (f) await rm(f, { force: true });
      await new Promise((r) => setTimeout(r, 250 * attempt));
    }
  }
}

/** How long a restore waits for kilnd's channels to open before letting the vCPUs run anyway. */
const CHANNEL_OPEN_WAIT_MS = 2000;

/**
 * Before a restored VM runs: connect the agent's and the guestctl port's sockets. The template
 * was snapshotted with the agent connected (blocked in a read); a host connected before the
 * vCPUs run is seen as never having left, so the agent reads the first hello at once instead
 * of seeing a disconnect, reopening its port and missing requests. Personalizing starts here too.
 */
async function openChannels(h: StepHost, ctx: CreateCtx, vm: VmHandle): Promise<void> {
  let opened!: () => void;
  const agentOpen = new Promise<void>((resolve) => (opened = resolve));
  const ac = new AbortController();
  ctx.channelAbort = ac;
  // One hello is enough: the agent reads it once the vCPUs run (a resent one would queue
  // behind it in a guest that is still slow, and delay the first real request).
  ctx.agentConnecting = h.connectAgent(vm.paths.agentSocket, { timeoutMs: 30_000, signal: ac.signal, helloIntervalMs: 5000, onSocketOpen: opened });
  ctx.agentConnecting.catch(() => undefined); // awaited by agent-connect
  ctx.guestCtl = startGuestCtl(h, ctx, vm);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.all([agentOpen, ctx.guestCtl?.connected.catch(() => undefined)]),
    new Promise((resolve) => (timer = setTimeout(resolve, CHANNEL_OPEN_WAIT_MS))),
  ]);
  clearTimeout(timer);
}

async function startVm(h: StepHost, ctx: CreateCtx): Promise<void> {
  const spec = vmSpec(ctx);
  const t = ctx.template;
  const { timings, ...vm } = await launch(h, ctx, spec); // timings go to the event, not the record
  ctx.vm = vm;
  ctx.rec.vm = vm;
  ctx.rec.updatedAt = Date.now();
  h.store.update(ctx.rec);
  // Every start names the jail (--insecure-no-jail shows here, vmm/jail-policy.ts).
  const jail = h.driver.capabilities().jail;
  h.store.addEvent(ctx.rec.id, t ? 'vm-restored' : 'vm-started', { pid: vm.pid, accel: vm.accel, ...(jail ? { jail } : {}), ...(t ? { template: t.name, templateKey: t.key } : {}), ...timings });
  h.watchVm(ctx.rec.id, vm);
}

async function stopVm(h: StepHost, ctx: CreateCtx): Promise<void> {
  if (!ctx.vm) return;
  await h.driver.kill(ctx.vm);
  ctx.vm = null;
  ctx.rec.vm = null;
  ctx.rec.updatedAt = Date.now();
  h.store.update(ctx.rec);
}

/** Boot → agent answer, a cold boot retried once on timeout (FIELD-NOTES: ~1 boot in 20 hangs early). */
async function connect(h: StepHost, ctx: CreateCtx, signal: AbortSignal): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    if (!ctx.vm) throw new KilnError('VM_NOT_STARTED', 'no VM to connect to');
    try {
      const timeoutMs = ctx.template ? 30_000 : h.bootTimeoutMs;
      const early = ctx.agentConnecting;
      ctx.agentConnecting = null;
      if (early) signal.addEventListener('abort', () => ctx.channelAbort?.abort(signal.reason), { once: true });
      ctx.agent = await (early ?? h.connectAgent(ctx.vm.paths.agentSocket, { timeoutMs, signal, helloIntervalMs: ctx.template ? 20 : 250 }));
      h.attachAgent(ctx.rec.id, ctx.agent);
      h.store.addEvent(ctx.rec.id, 'agent-connected', { attempt });
      return;
    } catch (err) {
      if (ctx.template || signal.aborted || attempt >= 2 || !h.driver.isAlive(ctx.vm)) throw err;
      h.warn(ctx.rec.id, 'guest did not answer; retrying the boot once', err);
      h.store.addEvent(ctx.rec.id, 'boot-retry', { reason: toKilnError(err).message, consoleTail: h.consoleTail(ctx.rec.id) });
      await stopVm(h, ctx);
      await rm(ctx.scratch, { force: true });
      await h.createScratchDisk(ctx.scratch, ctx.rec.spec.diskGiB);
      await startVm(h, ctx);
    }
  }
}

/**
 * Makes the guest unique and current before anyone uses it: a restored guest carries the
 * template's clock (frozen at snapshot time), RNG state, hostname and machine id.
 */
export async function personalize(agent: GuestAgent, id: string): Promise<void> {
  await agent.configure({
    timeEpochMs: Date.now(),
    hostname: id,
    entropyHex: randomBytes(64).toString('hex'),
    machineId: randomBytes(16).toString('hex'),
  });
}

/**
 * The sandbox's host-side network (netns, TAP, veth, policy, resolver). The step ends once the
 * netns and TAP exist, which is all a VMM needs to start; the rest is built meanwhile and
 * waited for before the guest runs (start-vm).
 */
function networkStep(network: NetworkService): Step<CreateCtx> {
  return {
    name: 'network',
    run: async (ctx) => {
      const staged = await network.setupStaged(ctx.rec.id, ctx.rec.spec.network ?? network.resolvePolicy(undefined));
      ctx.net = staged.net;
      ctx.netComplete = staged.complete;
    },
    undo: async (ctx) => {
      await ctx.netComplete?.catch(() => undefined); // nothing may still be building while it is removed
      await network.teardown(ctx.rec.id);
      ctx.net = null;
      ctx.netComplete = null;
    },
  };
}

/**
 * A clone of a boot template runs the dockerd that template verified ready right before its
 * snapshot: it is handed out without waiting for a ping, which follows at once (a failure
 * fails the sandbox). A fork of a user's snapshot has whatever dockerd its parent had: checked first.
 */
function deferDockerCheck(ctx: CreateCtx): boolean {
  return ctx.template?.source === 'boot';
}

/**
 * Starts personalizing through the VM's guestctl port (guest-ctl.ts), then dockerd's ping;
 * null where the VM has none. A restored guest takes it at once, side by side with the agent's hello.
 */
function startGuestCtl(h: StepHost, ctx: CreateCtx, vm = ctx.vm): GuestCtlSession | null {
  const path = vm?.paths.guestctlSocket;
  if (!path) return null;
  // After personalizing, the helper pings dockerd (cheaper than the agent's Node code); after a
  // restore it first runs the warm-up, and the ping of a boot template's clone is not waited
  // for by the create (see the docker-ready step).
  const restored = ctx.template !== null;
  return startGuestCtlSession(path, {
    hostname: ctx.rec.id,
    net: ctx.net?.guest ?? null,
    timeoutMs: 10_000,
    dockerTimeoutMs: deferDockerCheck(ctx) ? h.restoredDockerCheckMs : h.dockerReadyTimeoutMs,
    warm: restored,
  });
}

/**
 * The private registry as `registry.kiln.internal` (registry/service.ts): kilnd's proxy for this
 * sandbox and the forwarder in its netns, and the registry's CA in the guest dockerd's certs.d.
 */
function registryStep(h: StepHost, registry: RegistryService): Step<CreateCtx> {
  return {
    name: 'registry',
    run: async (ctx) => {
      if (!ctx.net || !ctx.agent) return;
      const t0 = performance.now();
      await registry.attach(ctx.rec.id, { netns: ctx.net.names.netns, gateway: ctx.net.addresses.gateway }, ctx.runDir);
      const attachMs = Math.round(performance.now() - t0);
      // The CA lands in the guest after the create returned: a restored guest's first file
      // write costs seconds under TCG (its agent's code paths run for the first time), and
      // nothing else of the create needs it. A pull in the first seconds may still find it missing.
      const id = ctx.rec.id;
      registry.trustInGuest(ctx.agent).then(
        () => h.store.addEvent(id, 'registry', { attachMs, trustMs: Math.round(performance.now() - t0) - attachMs }),
        (err: unknown) => h.warn(id, "could not write the registry's CA into the guest", err),
      );
    },
    undo: async (ctx) => registry.detach(ctx.rec.id, ctx.runDir),
  };
}

export function creationSteps(h: StepHost): Array<Step<CreateCtx>> {
  return [
    {
      name: 'resolve-image',
      run: async (ctx) => {
        ctx.image = await h.resolveImage();
        if (!ctx.image) throw new KilnError('IMAGE_NOT_BUILT', 'no guest image for the current recipe; run `kilnd image build`', { status: 409 });
        ctx.rec.imageHash = ctx.image.hash;
      },
    },
    {
      name: 'resolve-template',
      run: async (ctx) => {
        if (!h.templates || !ctx.image) {
          h.store.addEvent(ctx.rec.id, 'cold-boot', { reason: 'templates are disabled' });
          return;
        }
        const found = await h.templates.find(ctx.rec.spec, ctx.image, ctx.tenant ?? null);
        ctx.template = found.template;
        if (!found.template) h.store.addEvent(ctx.rec.id, 'cold-boot', { reason: found.reason });
      },
    },
    {
      name: 'allocate',
      run: async (ctx) => {
        await mkdir(ctx.runDir, { recursive: false, mode: 0o700 });
      },
      undo: async (ctx) => {
        await rm(ctx.runDir, { recursive: true, force: true });
      },
    },
    {
      name: 'scratch-disk',
      run: async (ctx) => {
        if (ctx.template && h.templates) {
          ctx.scratch = runDirLayout(ctx.runDir).scratchQcow2;
          await h.templates.createOverlay(ctx.template, ctx.scratch);
        } else {
          await h.createScratchDisk(ctx.scratch, ctx.rec.spec.diskGiB);
        }
      },
      undo: async (ctx) => {
        await rm(ctx.scratch, { force: true });
      },
    },
    ...(h.network ? [networkStep(h.network)] : []),
    {
      name: 'start-vm',
      run: async (ctx) => startVm(h, ctx),
      undo: async (ctx) => stopVm(h, ctx),
    },
    {
      name: 'agent-connect',
      run: async (ctx, signal) => connect(h, ctx, signal),
      undo: async (ctx) => {
        ctx.agent?.close();
        ctx.agent = null;
      },
    },
    {
      name: 'personalize',
      // Identity and network (the guest's MAC, address, route and resolver: a restored NIC has
      // the template's) through the guestctl port, started with the agent's hello on a restore;
      // through the agent if that fails.
      run: async (ctx) => {
        const agent = ctx.agent;
        if (!agent) throw new KilnError('AGENT_UNAVAILABLE', 'agent not connected');
        const t0 = performance.now();
        ctx.guestCtl ??= startGuestCtl(h, ctx);
        try {
          if (!ctx.guestCtl) throw new KilnError('PERSONALIZE_FAILED', 'the VM has no guestctl port');
          const r = await ctx.guestCtl.personalized;
          h.store.addEvent(ctx.rec.id, 'personalized', { via: 'guestctl', ms: Math.round(performance.now() - t0), ...r });
        } catch (err) {
          // The agent can do the same (slower: its Node code and `ip`/`date` spawns run in the guest).
          ctx.guestCtl = null;
          h.store.addEvent(ctx.rec.id, 'personalize-fallback', { reason: toKilnError(err).message });
          await Promise.all([personalize(agent, ctx.rec.id), ctx.net ? applyGuestNetwork(agent, ctx.net.guest) : undefined]);
          h.store.addEvent(ctx.rec.id, 'personalized', { via: 'agent', ms: Math.round(performance.now() - t0) });
        }
      },
    },
    {
      name: 'docker-ready',
      run: async (ctx) => {
        if (!ctx.agent) throw new KilnError('AGENT_UNAVAILABLE', 'agent not connected');
        // Asked already, by the helper, once it personalized.
        let r: { waitedMs: number };
        const helperPing = ctx.guestCtl?.dockerReady ?? null;
        if (helperPing && deferDockerCheck(ctx)) {
          h.verifyLater(ctx.rec.id, 'docker-ready', helperPing);
          h.store.addEvent(ctx.rec.id, 'docker-check', { after: 'ready', withinMs: h.restoredDockerCheckMs });
          return;
        }
        try {
          r = await (helperPing ?? ctx.agent.dockerReady(h.dockerReadyTimeoutMs));
        } catch (err) {
          // dockerd itself not answering fails the create; a broken channel falls back to the agent.
          if (!helperPing || toKilnError(err).code === 'GUEST_CTL_ERROR') throw err;
          h.store.addEvent(ctx.rec.id, 'docker-ready-fallback', { reason: toKilnError(err).message });
          r = await ctx.agent.dockerReady(h.dockerReadyTimeoutMs);
        }
        h.store.addEvent(ctx.rec.id, 'docker-ready', { waitedMs: r.waitedMs });
      },
    },
    ...(h.registry ? [registryStep(h, h.registry)] : []),
    {
      // Volumes join the running VM (restored or booted: the same hot-plug) and are mounted.
      name: 'volumes',
      run: async (ctx) => {
        const wanted = ctx.rec.spec.volumes ?? [];
        if (wanted.length === 0) return;
        if (!h.volumes || !ctx.vm || !ctx.agent) throw new KilnError('VOLUMES_UNSUPPORTED', 'this kilnd cannot attach volumes', { status: 501 });
        const t0 = performance.now();
        await h.volumes.attachLive(ctx.rec.id, ctx.vm, ctx.agent);
        h.store.addEvent(ctx.rec.id, 'volumes-attached', { volumes: wanted, ms: Math.round(performance.now() - t0) });
      },
    },
  ];
}
