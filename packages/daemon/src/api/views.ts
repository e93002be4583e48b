import type { SandboxRecord } from '../sandbox/types.js';
import type { SandboxView } from '@kiln/contract';
import { effectiveExpiresAt, usageOf } from '../sandbox/usage.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function sandboxView(r: SandboxRecord, now = Date.now()): SandboxView {
  return {
    id: r.id,
    state: r.state,
    spec: r.spec,
    imageHash: r.imageHash,
    step: r.step,
    error: r.error,
    vm: r.vm ? { pid: r.vm.pid, accel: r.vm.accel } : null,
    createdAt: new Date(r.createdAt).toISOString(),
    readyAt: iso(r.readyAt),
    // While auto-paused the timeout clock is stopped: the deadline shown moves with it.
    expiresAt: iso(effectiveExpiresAt(r, now)),
    autoPauseMs: r.spec.autoPauseMs ?? 0,
    pausedBy: r.state === 'paused' ? (r.pausedBy ?? 'user') : null,
    ...usageOf(r, now),
  };
}
