/**
 * The VMM driver interface: narrow on purpose (Kata's Hypervisor trait is the model; its
 * 40-method interface is the warning). An operation a driver lacks throws UNSUPPORTED_OPERATION.
 */
import type { Accel } from './accel.js';

export interface VmSpec {
  /** Sandbox id; carried in the VMM's process name and command line. */
  id: string;
  runDir: string;
  memoryMiB: number;
  vcpus: number;
  kernel: string;
  initrd: string;
  rootfs: string;
  scratch: string;
  /** Image-specific kernel arguments; the driver appends console and clock arguments. */
  cmdline: string;
}

export interface VmPaths {
  qmpSocket: string;
  agentSocket: string;
  consoleLog: string;
  vmmLog: string;
}

/** What must be persisted to find, adopt or kill a VM after a daemon restart. */
export interface VmHandle {
  id: string;
  pid: number;
  startTime: number;
  accel: Accel;
  paths: VmPaths;
}

export interface VmExit {
  /** How the VM ended, as far as the host can tell. */
  reason: 'exited' | 'killed' | 'vanished';
  exitCode: number | null;
  signal: string | null;
}

export interface DriverCapabilities {
  name: string;
  accel: Accel;
  accelReason: string;
  snapshot: boolean;
  restore: boolean;
  pause: boolean;
}

export interface VmmDriver {
  readonly name: string;
  capabilities(): DriverCapabilities;
  start(spec: VmSpec): Promise<VmHandle>;
  /** Graceful stop with a deadline, then SIGKILL. Resolves when the process is gone. */
  stop(vm: VmHandle, opts?: { timeoutMs?: number }): Promise<void>;
  /** SIGKILL (only if the pid still names this VM). Resolves when the process is gone. */
  kill(vm: VmHandle): Promise<void>;
  /** Resolves when the VM's process has ended (works for adopted VMs too). */
  wait(vm: VmHandle): Promise<VmExit>;
  isAlive(vm: VmHandle): boolean;
}

export function vmPaths(runDir: string): VmPaths {
  return {
    qmpSocket: `${runDir}/qmp.sock`,
    agentSocket: `${runDir}/agent.sock`,
    consoleLog: `${runDir}/console.log`,
    vmmLog: `${runDir}/vmm.log`,
  };
}
