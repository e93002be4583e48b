import type { SandboxRecord } from '../sandbox/types.js';
import type { SandboxView } from '@kiln/contract';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function sandboxView(r: SandboxRecord): SandboxView {
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
    expiresAt: iso(r.expiresAt),
  };
}
