/**
 * Audit, guest logs and monitoring, wired together for kilnd: the audit log, the guest log
 * store and collectors, the resource sampler and the Prometheus registry; the manager
 * observer that feeds them; the API hooks and routes that expose them.
 */
import { dirname, join } from 'node:path';
import { runDirLayout } from './sandbox/run-dir.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AuditActor } from './audit/record.js';
import type { Logger } from 'pino';
import { registerApiAudit, type ApiAuditOptions } from './audit/api-hook.js';
import { currentRequest } from './audit/context.js';
import type { AuditSink } from './audit/guest-records.js';
import { AuditLog } from './audit/log.js';
import { registerAuditRoutes } from './api/routes/audit.js';
import { registerLogRoutes } from './api/routes/logs.js';
import { registerMetricsRoutes } from './api/routes/metrics.js';
import { GuestLogs } from './logs/guest-logs.js';
import { KilnMetrics } from './metrics/registry.js';
import { ResourceSampler, type NetworkCounters, type SandboxSample } from './metrics/sampler.js';
import type { SandboxManager } from './sandbox/manager.js';
import type { ManagerObserver } from './sandbox/observer.js';
import type { VmHandle } from './vmm/driver.js';
import type { ObservabilityConfig } from './observability-config.js';


export class Observability {
  private sampler: ResourceSampler | null = null;
  private manager: SandboxManager | null = null;

  private constructor(
    readonly audit: AuditLog,
    readonly logs: GuestLogs,
    readonly metrics: KilnMetrics,
    private readonly cfg: ObservabilityConfig,
    private readonly logger: Logger,
  ) {}

  static async start(cfg: ObservabilityConfig, logger: Logger): Promise<Observability> {
    const audit = await AuditLog.open({
      dir: join(cfg.stateDir, 'audit'),
      maxFileBytes: cfg.auditMaxFileBytes,
      retentionMs: cfg.auditRetentionMs,
      logger: logger.child({ component: 'audit' }),
      context: currentRequest,
    });
    let obs: Observability | null = null;
    const logs = new GuestLogs({
      dir: join(cfg.stateDir, 'logs'),
      maxBytesPerSandbox: cfg.guestLogMaxBytes,
      retentionMs: cfg.guestLogRetentionMs,
      rateBytesPerSec: cfg.guestLogRateBytesPerSec,
      consoleRateBytesPerSec: cfg.guestConsoleRateBytesPerSec,
      logger: logger.child({ component: 'guest-logs' }),
      onDropped: (_id, n) => obs?.metrics.logBytesDropped(n),
    });
    const metrics = new KilnMetrics({
      sandboxes: () => obs?.manager?.list() ?? [],
      samples: () => obs?.sampler?.all() ?? [],
      logStats: (id) => logs.stats(id),
      auditHeadSeq: () => audit.head.seq,
    });
    audit.on('record', () => metrics.auditRecordWritten());
    obs = new Observability(audit, logs, metrics, cfg, logger);
    return obs;
  }

  /** Feeds the audit log (lifecycle), guest logs (collectors) and metrics from the manager. */
  readonly observer: ManagerObserver = {
    transition: (rec, from, to) => {
      this.audit
        .append({ type: 'lifecycle', sandboxId: rec.id, data: { from, to, ...(to === 'failed' && rec.error ? { error: rec.error } : {}) } })
        .catch((err: unknown) => this.logger.error({ err, sandboxId: rec.id }, 'audit of a state change failed'));
      this.metrics.observer.transition?.(rec, from, to);
      if (to === 'destroyed') {
        this.logs.detach(rec.id, { destroyed: true });
        this.sampler?.forget(rec.id);
      }
    },
    vmWatched: (id, vm) => this.logs.attach(id, logSockets(vm)),
    autoPaused: (id) => this.metrics.observer.autoPaused?.(id),
    woke: (id, wakeMs) => this.metrics.observer.woke?.(id, wakeMs),
    released: (id) => this.logs.detach(id),
    consoleTail: (id, bytes) =>
      this.logs
        .read(id)
        .filter((l) => l.service === 'console')
        .map((l) => l.text)
        .join('\n')
        .slice(-bytes),
  };

  /** Starts sampling and log retention once the manager has reconciled. */
  bind(manager: SandboxManager, network?: (id: string, fresh: boolean) => Promise<NetworkCounters | null>): void {
    this.manager = manager;
    this.sampler = new ResourceSampler(
      {
        list: () => manager.list(),
        // Not agentFor: a sample is not guest activity (it would keep idle timeouts and auto-pause from ever firing).
        agent: (id) => {
          try {
            return manager.get(id).state === 'running' ? manager.liveAgent(id) : null;
          } catch {
            return null;
          }
        },
        scratchPath: (id) => {
          try {
            return manager.scratchOf(id).path;
          } catch {
            return null;
          }
        },
        ...(network ? { network } : {}),
      },
      { intervalMs: this.cfg.statsIntervalMs, idleGuestIntervalMs: this.cfg.statsIdleGuestIntervalMs, logger: this.logger },
    );
    this.sampler.start();
    this.logs.startSweeping(() => new Set(manager.list().map((r) => r.id)));
  }

  /** The latest resource sample of a sandbox (null before the first, or without a sampler). */
  sample(id: string): SandboxSample | null {
    return this.sampler?.get(id) ?? null;
  }

  /** For the API: the audit sink of exec/file routes, the hooks, and the routes. */
  get api(): ApiObservability {
    return {
      audit: this.audit,
      registerHooks: (app, actorFor, how) => registerApiAudit(app, { audit: this.audit, recordMetadataReads: this.cfg.auditMetadataReads, ...(actorFor ? { actorFor } : {}), ...how }),
      registerRoutes: (app, manager) => {
        registerAuditRoutes(app, this.audit);
        registerLogRoutes(app, manager, this.logs);
        if (this.sampler) registerMetricsRoutes(app, manager, this.metrics, this.sampler);
      },
    };
  }

  async close(): Promise<void> {
    this.sampler?.stop();
    this.logs.close();
    await this.audit.close();
  }
}

export interface ApiObservability {
  audit: AuditSink;
  /** `how`: for an API of another shape (the E2B API), where its sandbox ids and error codes are. */
  registerHooks(app: FastifyInstance, actorFor?: (req: FastifyRequest) => AuditActor | null, how?: Pick<ApiAuditOptions, 'sandboxOf' | 'errorCodeOf'>): void;
  registerRoutes(app: FastifyInstance, manager: SandboxManager): void;
}

/** The log sockets of a VM (derived from its run dir for handles recorded before they existed). */
function logSockets(vm: VmHandle): { consoleSocket: string; logsSocket: string } {
  const l = runDirLayout(dirname(vm.paths.qmpSocket));
  return { consoleSocket: vm.paths.consoleSocket ?? l.consoleSocket, logsSocket: vm.paths.logsSocket ?? l.logsSocket };
}
