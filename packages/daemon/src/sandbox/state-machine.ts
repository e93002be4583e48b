/**
 * Explicit sandbox states. Like Firecracker's action/phase checks, every action names the
 * states it is allowed in, and an action in the wrong state is refused with INVALID_STATE.
 */
import { invalidState, KilnError } from '../errors.js';
import type { SandboxState } from './types.js';

const TRANSITIONS: Record<SandboxState, readonly SandboxState[]> = {
  creating: ['running', 'failed', 'stopping'],
  running: ['paused', 'stopping', 'failed'],
  paused: ['running', 'stopping', 'failed'],
  stopping: ['stopped', 'destroyed', 'failed'],
  stopped: ['destroyed', 'stopping'],
  failed: ['stopping', 'destroyed'],
  destroyed: [],
};

export type SandboxAction = 'exec' | 'files' | 'destroy' | 'logs' | 'inspect' | 'pause' | 'resume' | 'snapshot' | 'timeout';

const ALLOWED: Record<SandboxAction, readonly SandboxState[]> = {
  exec: ['running'],
  files: ['running'],
  destroy: ['creating', 'running', 'paused', 'stopping', 'stopped', 'failed'],
  logs: ['creating', 'running', 'paused', 'stopping', 'stopped', 'failed'],
  inspect: ['creating', 'running', 'paused', 'stopping', 'stopped', 'failed', 'destroyed'],
  pause: ['running'],
  resume: ['paused'],
  snapshot: ['running', 'paused'],
  timeout: ['creating', 'running', 'paused'],
};

export function canTransition(from: SandboxState, to: SandboxState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(id: string, from: SandboxState, to: SandboxState): void {
  if (!canTransition(from, to)) {
    throw new KilnError('INVALID_TRANSITION', `sandbox ${id}: illegal transition ${from} → ${to}`, { status: 409 });
  }
}

export function assertAction(id: string, state: SandboxState, action: SandboxAction): void {
  if (!ALLOWED[action].includes(state)) throw invalidState(id, state, action);
}
