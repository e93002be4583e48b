/** Lifecycle settings of kilnd (capacity, heartbeat, garbage collection). Every option documents its default. */

export interface LifecycleConfig {
  /** Most sandboxes (warm-pool members included) that may exist at once; a create beyond it gets 429. Default 64 (env KILN_MAX_SANDBOXES). */
  maxSandboxes: number;
  /**
   * Guest memory promised to all live sandboxes may reach this multiple of the host's RAM; a
   * create beyond it gets 503. Clones share template pages, so >1 is safe. Default 1.5
   * (env KILN_MEMORY_OVERCOMMIT_RATIO).
   */
  memoryOvercommitRatio: number;
  /** How often each running guest's agent is asked for its health. Default 5000 ms (env KILN_HEARTBEAT_INTERVAL_MS). */
  heartbeatIntervalMs: number;
  /** How long one health check may take before it counts as missed. Default 5000 ms. */
  heartbeatTimeoutMs: number;
  /** A guest whose agent has not answered for this long is destroyed (state failed, GUEST_UNRESPONSIVE). Default 30000 ms (env KILN_HEARTBEAT_GRACE_MS). */
  heartbeatGraceMs: number;
  /** How often the reaper collects orphans (VMMs, run dirs, network state). Default 60000 ms (env KILN_GC_INTERVAL_MS); 0 = only at start-up and on demand. */
  gcIntervalMs: number;
  /**
   * How often each VM's CPU use is sampled to give VMs that keep their vCPUs busy a low CPU
   * weight (lifecycle/cpu-balancer.ts). Default 1000 ms (env KILN_CPU_BALANCE_INTERVAL_MS); 0 = off.
   */
  cpuBalanceIntervalMs: number;
}

const num = (v: string | undefined, dflt: number): number => (v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : dflt);

export function lifecycleConfigFromEnv(env: NodeJS.ProcessEnv = process.env): LifecycleConfig {
  return {
    maxSandboxes: num(env.KILN_MAX_SANDBOXES, 64),
    memoryOvercommitRatio: num(env.KILN_MEMORY_OVERCOMMIT_RATIO, 1.5),
    heartbeatIntervalMs: num(env.KILN_HEARTBEAT_INTERVAL_MS, 5000),
    heartbeatTimeoutMs: num(env.KILN_HEARTBEAT_TIMEOUT_MS, 5000),
    heartbeatGraceMs: num(env.KILN_HEARTBEAT_GRACE_MS, 30_000),
    gcIntervalMs: num(env.KILN_GC_INTERVAL_MS, 60_000),
    cpuBalanceIntervalMs: num(env.KILN_CPU_BALANCE_INTERVAL_MS, 1000),
  };
}

export const DEFAULT_LIFECYCLE_CONFIG: LifecycleConfig = lifecycleConfigFromEnv();
