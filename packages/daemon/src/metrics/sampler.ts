/**
 * Periodic resource samples of every sandbox with a VM: its VMM's CPU time and RSS (/proc of
 * the QEMU pid), guest memory and load (the agent's `health`), scratch-disk use (allocated
 * blocks of its scratch file), and the guest's network bytes from the network service's
 * nftables counters (read every flowPollMs there; read now on a fresh sample). Samples are kept in memory: the latest one per sandbox.
 *
 * The host-side figures are read every round. The guest is asked only while its VMM is busy
 * (or was in the previous round), and otherwise every `idleGuestIntervalMs`: each `health`
 * wakes an idle guest's agent and dockerd, which costs an idle TCG guest ~40 ms of host CPU,
 * and an idle guest's memory and load do not move (docs/fast-start.md, idle CPU).
 */
import type { Logger } from 'pino';
import type { GuestAgent } from '../sandbox/guest-agent.js';
import type { SandboxRecord } from '../sandbox/types.js';
import { allocatedBytes, readProcUsage, type ProcUsage } from './proc-stats.js';
import { SampleHistory } from './history.js';

export interface SandboxSample {
  id: string;
  state: string;
  /** ms since the epoch */
  at: number;
  vmm: { pid: number; cpuSeconds: number; cpuPercent: number | null; rssBytes: number } | null;
  /** `at`: when the guest answered (ms since the epoch); older than the sample while the sandbox is idle. */
  guest: { at: number; memTotalBytes: number; memUsedBytes: number; load1: number; load5: number; load15: number; uptimeMs: number } | null;
  disk: { path: string; allocatedBytes: number; sizeBytes: number } | null;
  net: { rxBytes: number; txBytes: number } | null;
}

export interface NetworkCounters {
  rxBytes: number;
  txBytes: number;
}

export interface SamplerSource {
  list(): SandboxRecord[];
  /** The sandbox's agent if it can answer now, else null. */
  agent(id: string): GuestAgent | null;
  scratchPath(id: string): string | null;
  /** Network byte counters of a sandbox (`fresh`: read them now). Default: none. */
  network?(id: string, fresh: boolean): NetworkCounters | null | Promise<NetworkCounters | null>;
}

export interface SamplerOptions {
  /** How often to sample. Default 2000 ms. */
  intervalMs?: number;
  /** How long to wait for the agent's health answer. Default 1500 ms. */
  healthTimeoutMs?: number;
  /** How often an idle sandbox's guest is asked for its memory and load. Default 30000 ms. */
  idleGuestIntervalMs?: number;
  /** A sandbox is idle while its VMM used less than this much CPU (% of one core) over the last round. Default 10. */
  idleCpuPercent?: number;
  logger?: Logger;
  /** For tests: the clock (default Date.now) and the /proc reader (default readProcUsage). */
  now?: () => number;
  readUsage?: (pid: number) => ProcUsage | null;
}

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T | null> =>
  new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), ms);
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      () => {
        clearTimeout(t);
        resolve(null);
      },
    );
  });

export class ResourceSampler {
  private readonly latest = new Map<string, SandboxSample>();
  /** The last 15 minutes of samples (graphs). */
  readonly history = new SampleHistory();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  readonly intervalMs: number;
  readonly idleGuestIntervalMs: number;
  private readonly idleCpuPercent: number;

  constructor(
    private readonly src: SamplerSource,
    private readonly o: SamplerOptions = {},
  ) {
    this.intervalMs = o.intervalMs ?? 2000;
    this.idleGuestIntervalMs = o.idleGuestIntervalMs ?? 30_000;
    this.idleCpuPercent = o.idleCpuPercent ?? 10;
  }

  start(): void {
    const tick = () => {
      void this.sampleAll().finally(() => {
        if (this.timer) this.timer = setTimeout(tick, this.intervalMs).unref();
      });
    };
    this.timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  get(id: string): SandboxSample | null {
    return this.latest.get(id) ?? null;
  }

  all(): SandboxSample[] {
    return [...this.latest.values()];
  }

  forget(id: string): void {
    this.latest.delete(id);
    this.history.forget(id);
  }

  /**
   * Samples every sandbox once (concurrent calls share one round). `fresh`: ask every running
   * guest too, idle or not (a round already under way is awaited, then a fresh one runs).
   */
  async sampleAll(opts: { fresh?: boolean } = {}): Promise<void> {
    if (opts.fresh) while (this.running) await this.running;
    this.running ??= this.round(opts.fresh === true).finally(() => (this.running = null));
    return this.running;
  }

  private async round(fresh: boolean): Promise<void> {
    const recs = this.src.list().filter((r) => r.vm !== null);
    const ids = new Set(recs.map((r) => r.id));
    for (const id of this.latest.keys()) if (!ids.has(id)) this.latest.delete(id);
    for (const id of this.history.ids()) if (!ids.has(id)) this.history.forget(id);
    await Promise.all(recs.map((r) => this.sampleOne(r, fresh).catch((err: unknown) => this.o.logger?.debug({ err, sandboxId: r.id }, 'sample failed'))));
  }

  /** Whether this round asks the guest: it is busy now or was last round, or its answer is stale. */
  private guestDue(prev: SandboxSample | undefined, cpuPercent: number | null, at: number): boolean {
    const prevCpu = prev?.vmm?.cpuPercent ?? null;
    if (!prev?.guest || cpuPercent === null || prevCpu === null) return true;
    if (cpuPercent >= this.idleCpuPercent || prevCpu >= this.idleCpuPercent) return true;
    return at - prev.guest.at >= this.idleGuestIntervalMs;
  }

  private async sampleOne(rec: SandboxRecord, fresh: boolean): Promise<void> {
    const now = this.o.now ?? Date.now;
    const at = now();
    const prev = this.latest.get(rec.id);
    const usage = rec.vm ? (this.o.readUsage ?? readProcUsage)(rec.vm.pid) : null;
    let cpuPercent: number | null = null;
    if (usage && prev?.vmm && prev.vmm.pid === rec.vm?.pid && at > prev.at) {
      cpuPercent = Math.max(0, ((usage.cpuSeconds - prev.vmm.cpuSeconds) / ((at - prev.at) / 1000)) * 100);
    }
    const agent = rec.state === 'running' && (fresh || this.guestDue(prev, cpuPercent, at)) ? this.src.agent(rec.id) : null;
    const health = agent ? await withTimeout(agent.health(), this.o.healthTimeoutMs ?? 1500) : null;
    const scratch = this.src.scratchPath(rec.id);
    const disk = scratch ? allocatedBytes(scratch) : null;
    const net = this.src.network ? await Promise.resolve(this.src.network(rec.id, fresh)).catch(() => null) : null;
    const sample: SandboxSample = {
      id: rec.id,
      state: rec.state,
      at,
      vmm: usage && rec.vm ? { pid: rec.vm.pid, cpuSeconds: usage.cpuSeconds, cpuPercent, rssBytes: usage.rssBytes } : null,
      guest: health
        ? {
            at: now(),
            memTotalBytes: health.memTotalKiB * 1024,
            memUsedBytes: (health.memTotalKiB - health.memAvailableKiB) * 1024,
            load1: health.loadavg[0],
            load5: health.loadavg[1],
            load15: health.loadavg[2],
            uptimeMs: health.uptimeMs,
          }
        : (prev?.guest ?? null),
      disk: disk && scratch ? { path: scratch, ...disk } : null,
      net,
    };
    this.latest.set(rec.id, sample);
    this.history.add(sample);
  }
}
