/** Settings of the audit log, guest logs and resource sampling. Every option documents its default. */
export interface ObservabilityConfig {
  stateDir: string;
  /** Audit: start a new chain file past this size. Default 64 MiB. */
  auditMaxFileBytes: number;
  /** Audit: remove closed chain files whose newest record is older than this; 0 keeps all. Default 0. */
  auditRetentionMs: number;
  /** Audit: record GETs of kilnd's own metadata too (health, list, inspect, events, logs, stats, metrics, audit…), so every API call has a record. Default true; KILN_AUDIT_METADATA_READS=0 leaves them out (for heavy polling or scraping). */
  auditMetadataReads: boolean;
  /** Guest logs stored per sandbox (all services), newest kept. Default 16 MiB. */
  guestLogMaxBytes: number;
  /** Keep a destroyed sandbox's guest logs this long. Default 7 days. */
  guestLogRetentionMs: number;
  /** Bytes per second kilnd reads from the guest's service-log channel after a 4 s burst; past it the guest's writer waits (a flood costs kilnd no more). Default 64 KiB/s. */
  guestLogRateBytesPerSec: number;
  /**
   * The same for the serial console, after a burst of max(64 KiB, 4 s of rate). Lower, because
   * QEMU's UART hands kilnd one byte per write: a console read costs the host far more per byte
   * than the service logs' virtio port. Default 8 KiB/s (env KILN_GUEST_CONSOLE_RATE_BYTES_PER_SEC).
   */
  guestConsoleRateBytesPerSec: number;
  /** Resource sampling period. Default 2000 ms. */
  statsIntervalMs: number;
  /** How often an idle sandbox's guest is asked for its memory and load (busy ones: every sampling round). Default 30000 ms. */
  statsIdleGuestIntervalMs: number;
}

const envNumber = (name: string, dflt: number): number => {
  const v = process.env[name];
  return v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : dflt;
};

/** Defaults; each can be overridden by the environment variable named beside it. */
export const DEFAULT_OBSERVABILITY_CONFIG: Omit<ObservabilityConfig, 'stateDir'> = {
  auditMaxFileBytes: envNumber('KILN_AUDIT_MAX_FILE_BYTES', 64 * 1024 * 1024),
  auditRetentionMs: envNumber('KILN_AUDIT_RETENTION_MS', 0),
  auditMetadataReads: process.env.KILN_AUDIT_METADATA_READS !== '0',
  guestLogMaxBytes: envNumber('KILN_GUEST_LOG_MAX_BYTES', 16 * 1024 * 1024),
  guestLogRetentionMs: envNumber('KILN_GUEST_LOG_RETENTION_MS', 7 * 24 * 3600 * 1000),
  guestLogRateBytesPerSec: envNumber('KILN_GUEST_LOG_RATE_BYTES_PER_SEC', 64 * 1024),
  guestConsoleRateBytesPerSec: envNumber('KILN_GUEST_CONSOLE_RATE_BYTES_PER_SEC', 8 * 1024),
  statsIntervalMs: envNumber('KILN_STATS_INTERVAL_MS', 2000),
  statsIdleGuestIntervalMs: envNumber('KILN_STATS_IDLE_GUEST_INTERVAL_MS', 30_000),
};
