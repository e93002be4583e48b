/**
 * Admission control: a create is refused before anything is made when it would exceed the
 * sandbox count limit (429) or promise more guest memory than the host may overcommit (503).
 * The check is synchronous so the manager can run it and insert the row with no await
 * between them: two concurrent creates can never both take the last slot.
 */
import { totalmem } from 'node:os';
import { KilnError } from '../errors.js';
import type { SandboxRecord, SandboxSpec } from '../sandbox/types.js';

export interface CapacityLimits {
  maxSandboxes: number;
  memoryOvercommitRatio: number;
  /** Host RAM in MiB. Default: os.totalmem(). */
  hostMemoryMiB?: number;
}

/** States in which a sandbox holds (or is about to hold) a VM and its memory. */
const HOLDS_RESOURCES = new Set(['creating', 'running', 'paused', 'stopping']);

export function capacityUsage(records: readonly SandboxRecord[]): { sandboxes: number; memoryMiB: number } {
  const live = records.filter((r) => HOLDS_RESOURCES.has(r.state));
  return { sandboxes: live.length, memoryMiB: live.reduce((s, r) => s + r.spec.memoryMiB, 0) };
}

export function checkCapacity(records: readonly SandboxRecord[], spec: SandboxSpec, limits: CapacityLimits): void {
  const use = capacityUsage(records);
  if (use.sandboxes + 1 > limits.maxSandboxes) {
    throw new KilnError('CAPACITY_EXCEEDED', `kilnd already has ${use.sandboxes} sandboxes (maxSandboxes ${limits.maxSandboxes}, warm-pool members included); destroy one first`, {
      status: 429,
      details: { reason: 'maxSandboxes', sandboxes: use.sandboxes, maxSandboxes: limits.maxSandboxes },
    });
  }
  const hostMiB = limits.hostMemoryMiB ?? Math.floor(totalmem() / 1048576);
  const allowedMiB = Math.floor(hostMiB * limits.memoryOvercommitRatio);
  if (use.memoryMiB + spec.memoryMiB > allowedMiB) {
    throw new KilnError(
      'MEMORY_EXHAUSTED',
      `a ${spec.memoryMiB} MiB sandbox would overcommit host memory: ${use.memoryMiB} MiB already promised, limit ${allowedMiB} MiB (${hostMiB} MiB × memoryOvercommitRatio ${limits.memoryOvercommitRatio})`,
      { status: 503, details: { reason: 'memory', field: 'memoryMiB', promisedMiB: use.memoryMiB, requestedMiB: spec.memoryMiB, limitMiB: allowedMiB } },
    );
  }
}

/** The host's capacity as /v1/info shows the admin: sandboxes and guest memory, used and allowed. */
export function capacityView(records: readonly SandboxRecord[], limits: CapacityLimits): { sandboxes: number; maxSandboxes: number; memoryMiB: number; memoryLimitMiB: number; hostMemoryMiB: number } {
  const use = capacityUsage(records);
  const hostMiB = limits.hostMemoryMiB ?? Math.floor(totalmem() / 1048576);
  return { sandboxes: use.sandboxes, maxSandboxes: limits.maxSandboxes, memoryMiB: use.memoryMiB, memoryLimitMiB: Math.floor(hostMiB * limits.memoryOvercommitRatio), hostMemoryMiB: hostMiB };
}
