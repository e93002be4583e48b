/** The sandbox model shared by the manager, the store and the API. */
import type { VmHandle } from '../vmm/driver.js';
import type { NetworkPolicy } from '../network/policy.js';

export const SANDBOX_STATES = ['creating', 'running', 'paused', 'stopping', 'stopped', 'destroyed', 'failed'] as const;
export type SandboxState = (typeof SANDBOX_STATES)[number];

export interface SandboxSpec {
  memoryMiB: number;
  vcpus: number;
  diskGiB: number;
  /** Lifetime from creation; 0 means no timeout. */
  timeoutMs: number;
  /** Destroy after this long without an exec or file call; 0 = never. Absent in records of older kilnds. */
  idleTimeoutMs?: number;
  /** Pause (memory kept, no CPU) after this long without guest activity; the next guest call wakes it. 0 = never. Absent in records of older kilnds. */
  autoPauseMs?: number;
  env: Record<string, string>;
  labels: Record<string, string>;
  /** Name of the template to start from (a fork); null = the default template of the shape. */
  template: string | null;
  /** Default working directory and user of execs (a template built from an image: its WORKDIR and USER). */
  workdir?: string;
  user?: string;
  /** Egress policy at creation (the one in force, changed live, is the network lease's). Absent in records of older kilnds. */
  network?: NetworkPolicy;
  /** Persistent volumes hot-plugged and mounted once the VM runs (volume/service.ts). Absent = none. */
  volumes?: Array<{ name: string; path: string; readOnly: boolean }>;
}

export interface SandboxError {
  code: string;
  message: string;
  step?: string;
}

export interface SandboxRecord {
  id: string;
  state: SandboxState;
  spec: SandboxSpec;
  imageHash: string | null;
  /** The creation step in progress (while creating) or the last one completed. */
  step: string | null;
  vm: VmHandle | null;
  error: SandboxError | null;
  createdAt: number;
  updatedAt: number;
  readyAt: number | null;
  expiresAt: number | null;
  /** Set while the sandbox is an unassigned member of a warm pool (the pool's name). */
  pool: string | null;
  /** While paused: who paused it ('auto' = auto-pause, woken by the next guest call). Absent/null otherwise. */
  pausedBy?: 'user' | 'auto' | null;
  /** While paused: when the pause began (ms since the epoch). */
  pausedAt?: number | null;
  /** Time spent paused in pauses that have ended (ms). */
  pausedMs?: number;
}

export interface SandboxEvent {
  seq: number;
  sandboxId: string;
  at: number;
  type: string;
  data: Record<string, unknown>;
}
