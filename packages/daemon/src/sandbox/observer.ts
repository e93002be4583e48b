/**
 * What the manager tells the rest of kilnd about sandboxes (audit, guest logs, metrics).
 * Every method is optional, called synchronously, and must not throw.
 */
import type { VmHandle } from '../vmm/driver.js';
import type { SandboxRecord, SandboxState } from './types.js';

export interface ManagerObserver {
  /** A state change; `from` is null when the sandbox was just created. */
  transition?(rec: SandboxRecord, from: SandboxState | null, to: SandboxState): void;
  /** kilnd now watches this VM: just started or restored, or adopted after a restart. */
  vmWatched?(id: string, vm: VmHandle): void;
  /** The sandbox's host resources (run dir, VM) were released. */
  released?(id: string): void;
  /** Auto-pause paused the sandbox (issue 13). */
  autoPaused?(id: string): void;
  /** A guest call woke an auto-paused sandbox, taking `wakeMs`. */
  woke?(id: string, wakeMs: number): void;
  /** The last bytes of the guest console, for error messages. */
  consoleTail?(id: string, bytes: number): string;
}
