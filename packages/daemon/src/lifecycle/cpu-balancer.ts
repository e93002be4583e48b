/**
 * Keeps a waking sandbox fast next to one that spins. Every VM's cgroup has the same CPU
 * weight, so under contention a VM whose guest keeps its vCPUs busy (a build, a fork bomb)
 * takes as large a share as a neighbour that wakes for a moment to run a command, and the
 * neighbour's command runs at a fraction of its speed. This samples each VM's CPU time and
 * gives a VM that stays busy a low weight (vmm/cgroup.ts, DEMOTED_CPU_SHARES) until it quiets
 * down again. Weights only divide contended CPU: a busy VM alone on the host still gets all
 * of it, and two busy VMs share equally.
 *
 * Hysteresis: busy (≥ busyCores) for `demoteAfter` samples in a row → low weight; quiet
 * (≤ quietCores) for `restoreAfter` samples in a row → default weight. Each change is an event.
 */
import type { VmHandle } from '../vmm/driver.js';

export interface CpuBalancerHost {
  /** The VMs to watch (running or paused sandboxes with a VM). */
  vms(): Array<{ id: string; vm: VmHandle }>;
  /** CPU seconds (all threads) of the VMM process so far, or null when it cannot be read. */
  cpuSeconds(vm: VmHandle): number | null;
  /** Sets the VM's CPU weight: low (demoted) or the default. */
  setDemoted(vm: VmHandle, demoted: boolean): void;
  /** A VM's weight changed (for its events). */
  changed(id: string, demoted: boolean, cores: number): void;
}

export interface CpuBalancerOptions {
  intervalMs: number;
  /** Cores used over one sample that count as busy. Default 0.5. */
  busyCores?: number;
  /** Cores used over one sample that count as quiet. Default 0.2. */
  quietCores?: number;
  /**
   * Busy samples in a row before the weight drops. Default 3: a burst of commands (under TCG
   * each exec keeps the VMM near a core while it runs) is over sooner than that.
   */
  demoteAfter?: number;
  /** Quiet samples in a row before it is restored. Default 3. */
  restoreAfter?: number;
}

interface VmState {
  pid: number;
  startTime: number;
  cpu: number;
  at: number;
  busy: number;
  quiet: number;
  demoted: boolean;
}

export class CpuBalancer {
  private readonly state = new Map<string, VmState>();
  private timer: NodeJS.Timeout | null = null;
  private readonly busyCores: number;
  private readonly quietCores: number;
  private readonly demoteAfter: number;
  private readonly restoreAfter: number;

  constructor(
    private readonly h: CpuBalancerHost,
    private readonly o: CpuBalancerOptions,
  ) {
    this.busyCores = o.busyCores ?? 0.5;
    this.quietCores = o.quietCores ?? 0.2;
    this.demoteAfter = o.demoteAfter ?? 3;
    this.restoreAfter = o.restoreAfter ?? 3;
  }

  start(): void {
    if (this.o.intervalMs <= 0 || this.timer) return;
    this.timer = setInterval(() => this.tick(), this.o.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One sample of every VM (`now` in ms, for tests). */
  tick(now = performance.now()): void {
    const seen = new Set<string>();
    for (const { id, vm } of this.h.vms()) {
      seen.add(id);
      const cpu = this.h.cpuSeconds(vm);
      if (cpu === null) continue;
      const s = this.state.get(id);
      if (!s || s.pid !== vm.pid || s.startTime !== vm.startTime) {
        // A new VM (or a new VM for this id) starts at the default weight.
        this.state.set(id, { pid: vm.pid, startTime: vm.startTime, cpu, at: now, busy: 0, quiet: 0, demoted: false });
        continue;
      }
      const seconds = (now - s.at) / 1000;
      if (seconds <= 0) continue;
      const cores = (cpu - s.cpu) / seconds;
      s.cpu = cpu;
      s.at = now;
      s.busy = cores >= this.busyCores ? s.busy + 1 : 0;
      s.quiet = cores <= this.quietCores ? s.quiet + 1 : 0;
      const demote = !s.demoted && s.busy >= this.demoteAfter;
      const restore = s.demoted && s.quiet >= this.restoreAfter;
      if (!demote && !restore) continue;
      try {
        this.h.setDemoted(vm, demote);
      } catch {
        continue; // the VM (and its cgroup) just went away
      }
      s.demoted = demote;
      this.h.changed(id, demote, Math.round(cores * 100) / 100);
    }
    for (const id of this.state.keys()) if (!seen.has(id)) this.state.delete(id);
  }
}
