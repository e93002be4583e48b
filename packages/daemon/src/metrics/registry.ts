/**
 * kilnd's Prometheus metrics (prom-client, its own registry): sandbox counts by state,
 * creations/destructions with duration histograms, per-sandbox resource gauges from the
 * sampler, audit records written, guest log bytes stored and dropped, and kilnd's own
 * process metrics (prefix kilnd_).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SandboxRecord, SandboxState } from '../sandbox/types.js';
import { SANDBOX_STATES } from '../sandbox/types.js';
import type { ManagerObserver } from '../sandbox/observer.js';
import type { SandboxSample } from './sampler.js';
import { registerUsageMetrics, type UsageMetrics } from './usage-metrics.js';

export interface MetricsSources {
  sandboxes(): SandboxRecord[];
  samples(): SandboxSample[];
  logStats(id: string): { storedBytes: number; droppedBytes: number } | null;
  auditHeadSeq(): number;
}

export class KilnMetrics {
  readonly registry = new Registry();
  private readonly creates: Counter<'outcome'>;
  private readonly createSeconds: Histogram;
  private readonly destroys: Counter;
  private readonly destroySeconds: Histogram;
  private readonly auditRecords: Counter;
  private readonly logDropped: Counter;
  private readonly stoppingAt = new Map<string, number>();
  private readonly usage: UsageMetrics;

  constructor(src: MetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'kilnd_' });
    new Gauge({
      name: 'kiln_sandboxes',
      help: 'Sandboxes by state',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = new Map<string, number>(SANDBOX_STATES.map((s) => [s, 0]));
        for (const r of src.sandboxes()) counts.set(r.state, (counts.get(r.state) ?? 0) + 1);
        this.reset();
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    this.creates = new Counter({ name: 'kiln_sandbox_creates_total', help: 'Sandbox creations finished, by outcome (running or failed)', labelNames: ['outcome'], registers });
    this.createSeconds = new Histogram({
      name: 'kiln_sandbox_create_duration_seconds',
      help: 'Time from create request to running',
      buckets: [0.25, 0.5, 1, 2, 5, 10, 20, 40, 60, 120, 300],
      registers,
    });
    this.destroys = new Counter({ name: 'kiln_sandbox_destroys_total', help: 'Sandboxes destroyed', registers });
    this.destroySeconds = new Histogram({ name: 'kiln_sandbox_destroy_duration_seconds', help: 'Time from stopping to destroyed', buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10], registers });
    this.auditRecords = new Counter({ name: 'kiln_audit_records_total', help: 'Audit records written (durable)', registers });
    new Gauge({ name: 'kiln_audit_head_seq', help: 'Seq of the newest durable audit record', registers, collect() { this.set(src.auditHeadSeq()); } });
    this.usage = registerUsageMetrics(this.registry, () => src.sandboxes());
    this.logDropped = new Counter({ name: 'kiln_guest_log_dropped_bytes_total', help: 'Guest log bytes dropped by the per-sandbox cap (all sandboxes)', registers });

    const perSandbox = (name: string, help: string, pick: (s: SandboxSample) => number | null | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['sandbox'],
        registers,
        collect() {
          this.reset();
          for (const s of src.samples()) {
            const v = pick(s);
            if (v !== null && v !== undefined && Number.isFinite(v)) this.set({ sandbox: s.id }, v);
          }
        },
      });
    perSandbox('kiln_sandbox_vmm_cpu_seconds', 'CPU time used by the sandbox VMM (QEMU) process, user+system, cumulative', (s) => s.vmm?.cpuSeconds);
    perSandbox('kiln_sandbox_vmm_cpu_ratio', 'CPU use of the VMM over the last sample interval (1 = one core)', (s) => (s.vmm?.cpuPercent ?? null) === null ? null : (s.vmm?.cpuPercent ?? 0) / 100);
    perSandbox('kiln_sandbox_vmm_rss_bytes', 'Resident memory of the VMM process', (s) => s.vmm?.rssBytes);
    perSandbox('kiln_sandbox_guest_memory_used_bytes', 'Guest memory in use (total - available), as the agent reports', (s) => s.guest?.memUsedBytes);
    perSandbox('kiln_sandbox_guest_memory_total_bytes', 'Guest memory total', (s) => s.guest?.memTotalBytes);
    perSandbox('kiln_sandbox_guest_load1', 'Guest 1-minute load average', (s) => s.guest?.load1);
    perSandbox('kiln_sandbox_disk_allocated_bytes', 'Host disk blocks allocated by the scratch disk', (s) => s.disk?.allocatedBytes);
    perSandbox('kiln_sandbox_network_receive_bytes', 'Bytes received by the guest (network counters)', (s) => s.net?.rxBytes);
    perSandbox('kiln_sandbox_network_transmit_bytes', 'Bytes sent by the guest (network counters)', (s) => s.net?.txBytes);
    new Gauge({
      name: 'kiln_sandbox_log_stored_bytes',
      help: 'Guest log bytes stored for the sandbox (≤ the cap)',
      labelNames: ['sandbox'],
      registers,
      collect() {
        this.reset();
        for (const r of src.sandboxes()) {
          const st = src.logStats(r.id);
          if (st) this.set({ sandbox: r.id }, st.storedBytes);
        }
      },
    });
    new Gauge({
      name: 'kiln_sandbox_log_dropped_bytes',
      help: 'Guest log bytes dropped by the cap for the sandbox',
      labelNames: ['sandbox'],
      registers,
      collect() {
        this.reset();
        for (const r of src.sandboxes()) {
          const st = src.logStats(r.id);
          if (st) this.set({ sandbox: r.id }, st.droppedBytes);
        }
      },
    });
  }

  auditRecordWritten(): void {
    this.auditRecords.inc();
  }

  logBytesDropped(n: number): void {
    this.logDropped.inc(n);
  }

  /** Counts creations and destructions and their durations from state changes. */
  readonly observer: ManagerObserver = {
    transition: (rec: SandboxRecord, from: SandboxState | null, to: SandboxState) => {
      if (from === 'creating' && to === 'running') {
        this.creates.inc({ outcome: 'running' });
        this.createSeconds.observe(Math.max(0, ((rec.readyAt ?? Date.now()) - rec.createdAt) / 1000));
      } else if (from === 'creating' && to === 'failed') {
        this.creates.inc({ outcome: 'failed' });
      }
      if (to === 'stopping') this.stoppingAt.set(rec.id, Date.now());
      if (to === 'destroyed') {
        this.destroys.inc();
        const t0 = this.stoppingAt.get(rec.id);
        if (t0 !== undefined) this.destroySeconds.observe((Date.now() - t0) / 1000);
        this.stoppingAt.delete(rec.id);
      }
    },
    autoPaused: () => this.usage.autoPaused(),
    woke: (_id, wakeMs) => this.usage.woke(wakeMs),
  };

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
