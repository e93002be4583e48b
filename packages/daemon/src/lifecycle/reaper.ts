/**
 * The reaper: kilnd's periodic housekeeping. At start-up and every `gcIntervalMs` it collects
 * orphans (VMM processes carrying a kiln sandbox id with no state row, run directories with
 * their disks, sockets and logs, network namespaces, TAP/veth devices and nft tables that
 * belong to no sandbox); every `heartbeatIntervalMs` it checks guests' agents and idle timeouts.
 *
 * Dead VMs themselves are noticed by the manager as they die (the child's exit event for VMs
 * this kilnd started; an identity poll every 250 ms for VMs adopted after a restart), not here.
 * Zombies: Node reaps its own children; an adopted VM's parent is init (its original kilnd is
 * gone), which reaps it; a zombie never counts as alive (util/proc.ts reads its state).
 */
import type { Logger } from 'pino';
import type { LifecycleConfig } from './config.js';
import { Heartbeat, type HeartbeatHost } from './heartbeat.js';
import { reapIdle, type IdleHost } from './idle.js';

export interface ReaperHost extends HeartbeatHost, IdleHost {
  /** Removes orphans; returns a line per thing removed. */
  collect(): Promise<string[]>;
}

export class Reaper {
  private readonly heartbeat: Heartbeat;
  private hbTimer: NodeJS.Timeout | null = null;
  private gcTimer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;
  private gcRunning: Promise<string[]> | null = null;

  constructor(
    private readonly h: ReaperHost,
    private readonly cfg: Pick<LifecycleConfig, 'heartbeatIntervalMs' | 'heartbeatTimeoutMs' | 'heartbeatGraceMs' | 'gcIntervalMs'>,
    private readonly log: Logger,
  ) {
    this.heartbeat = new Heartbeat(h, { timeoutMs: cfg.heartbeatTimeoutMs, graceMs: cfg.heartbeatGraceMs });
  }

  start(): void {
    if (this.cfg.heartbeatIntervalMs > 0) {
      this.hbTimer = setInterval(() => void this.tick(), this.cfg.heartbeatIntervalMs);
      this.hbTimer.unref();
    }
    if (this.cfg.gcIntervalMs > 0) {
      this.gcTimer = setInterval(() => void this.collect().catch((err: unknown) => this.log.error({ err }, 'gc failed')), this.cfg.gcIntervalMs);
      this.gcTimer.unref();
    }
  }

  /** One heartbeat + idle round (skipped while the previous one still runs). */
  async tick(): Promise<void> {
    if (this.running) return;
    this.running = Promise.allSettled([this.heartbeat.tick(), reapIdle(this.h)]).then((rs) => {
      for (const r of rs) if (r.status === 'rejected') this.log.error({ err: r.reason }, 'lifecycle tick failed');
    });
    try {
      await this.running;
    } finally {
      this.running = null;
    }
  }

  /** A garbage collection now (concurrent callers share one run); what was removed. */
  collect(): Promise<string[]> {
    this.gcRunning ??= this.h.collect().finally(() => {
      this.gcRunning = null;
    });
    return this.gcRunning;
  }

  async stop(): Promise<void> {
    if (this.hbTimer) clearInterval(this.hbTimer);
    if (this.gcTimer) clearInterval(this.gcTimer);
    await this.running;
    await this.gcRunning?.catch(() => undefined);
  }
}
