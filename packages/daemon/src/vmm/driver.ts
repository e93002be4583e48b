/**
 * The VMM driver interface: narrow on purpose (Kata's Hypervisor trait is the model; its
 * 40-method interface is the warning). An operation a driver lacks throws UNSUPPORTED_OPERATION.
 */
import type { Accel } from './accel.js';
import { runDirLayout } from '../sandbox/run-dir.js';

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
  /** Guest hostname passed on the kernel command line. Default: the id. */
  hostname?: string;
  /**
   * Guest RAM backed by a file. `template`: shared mapping, the guest's writes land in the
   * file (a template being made). `clone`: a private copy-on-write mapping of a read-only
   * template file, so untouched pages stay shared by every clone.
   */
  memory?: { file: string; mode: 'template' | 'clone' };
  /** Scratch disk format. Default raw; clones use a qcow2 overlay over the template's disk. */
  scratchFormat?: 'raw' | 'qcow2';
  /** Restore from this device-state file instead of booting (QEMU `-incoming defer`). */
  incoming?: string;
  /**
   * The NIC's backend: a TAP device inside a network namespace (QEMU is started inside that
   * namespace and opens the TAP there). Every VM has the same virtio-net device whether or not
   * it has a backend (snapshots rely on an identical device set); without `net` the NIC has
   * no peer and its frames go nowhere. The guest's own MAC and address are set at run time
   * through the agent (network/guest.ts), so a restored clone can take on its own.
   */
  net?: { netns: string; tap: string; mac: string };
}

export interface VmPaths {
  qmpSocket: string;
  agentSocket: string;
  /** virtio-serial port org.kiln.guestctl: the guest's resident helper (personalization). */
  guestctlSocket?: string;
  /** The serial console (QEMU socket server; kilnd reads and stores it, capped). */
  consoleSocket: string;
  /** virtio-serial port org.kiln.logs: the guest's service logs, `<service> <line>`. */
  logsSocket: string;
  vmmLog: string;
}

/** What must be persisted to find, adopt or kill a VM after a daemon restart. */
export interface VmHandle {
  id: string;
  pid: number;
  startTime: number;
  accel: Accel;
  paths: VmPaths;
  /** Where the start or restore spent its time, ms by phase (for events and the bench). */
  timings?: Record<string, number>;
}

export interface VmExit {
  /** How the VM ended, as far as the host can tell. */
  reason: 'exited' | 'killed' | 'vanished';
  exitCode: number | null;
  signal: string | null;
}

/** A VMM process found on the host by the driver that starts them (see VmmDriver.findVmms). */
export interface FoundVmm {
  /** The sandbox id its command line names. */
  id: string;
  pid: number;
  /** SIGKILLs it if the pid still names this VMM; false if it was gone. */
  kill(): boolean;
}

export interface DriverCapabilities {
  name: string;
  /** VMM version (part of a template's key: a snapshot restores only into the same VMM). */
  version: string;
  accel: Accel;
  accelReason: string;
  snapshot: boolean;
  restore: boolean;
  pause: boolean;
  /** Whether VMs run jailed (vmm/jail-policy.ts); absent for drivers with no jail to speak of. */
  jail?: 'jailed' | 'insecure-no-jail' | 'refused';
  jailReason?: string;
}

/** A disk hot-plugged into a running VM (a volume; vmm/disk-hotplug.ts). */
export interface HotDisk {
  /** The disk's file on the host (raw). */
  file: string;
  readOnly: boolean;
  /** SCSI target, 0..MAX_HOT_DISKS-1: the guest's host:0:slot:0. */
  slot: number;
  /** Names the device and its block node (`vol<slot>`). */
  serial: string;
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
  /** Gives the VM a low CPU weight (it keeps its vCPUs busy) or the default one; optional. */
  setCpuDemoted?(vm: VmHandle, demoted: boolean): void;
  wait(vm: VmHandle): Promise<VmExit>;
  isAlive(vm: VmHandle): boolean;
  /**
   * Pauses the VM and writes its device state to `stateFile`. With `ignoreShared` the RAM of
   * a `template`-mode memory file is left out (it already is the file). The VM stays paused.
   */
  snapshot(vm: VmHandle, opts: { stateFile: string; ignoreShared: boolean; timeoutMs?: number }): Promise<{ durationMs: number; bytes: number }>;
  /** Starts a VM from `spec.incoming` and resumes it. */
  /**
   * Starts a VM from spec.incoming. `beforeResume` runs once the state is loaded, before the
   * vCPUs run: host channels connected then find the guest's ports as they were snapshotted.
   */
  restore(spec: VmSpec, opts: { ignoreShared: boolean; timeoutMs?: number; beforeResume?: (vm: VmHandle) => Promise<void> }): Promise<VmHandle>;
  pause(vm: VmHandle): Promise<void>;
  resume(vm: VmHandle): Promise<void>;
  /**
   * Copies a (paused) VM's disk into a new raw file `out`, reading it the way the VMM would:
   * the disk's contents, header included, are the VMM's (vmm/disk-flatten.ts). A qcow2 disk's
   * backing file must lie under `templatesRoot`.
   */
  flattenDisk?(src: { path: string; format: 'raw' | 'qcow2' }, out: string, templatesRoot: string): Promise<void>;
  /** Hot-plugs a disk (a volume) into a running VM (vmm/disk-hotplug.ts); absent = volumes are refused. */
  attachDisk?(vm: VmHandle, disk: HotDisk): Promise<void>;
  /**
   * This driver's VMM processes of sandboxes whose run dirs are under `runRoot`, whether or not
   * a handle to them is known (orphan GC: a VMM whose row is gone).
   */
  findVmms(runRoot: string): FoundVmm[];
}

/** The VMM's files in its run dir (the layout, and who may write where, is sandbox/run-dir.ts). */
export function vmPaths(runDir: string): VmPaths {
  const l = runDirLayout(runDir);
  return { qmpSocket: l.qmpSocket, agentSocket: l.agentSocket, guestctlSocket: l.guestctlSocket, consoleSocket: l.consoleSocket, logsSocket: l.logsSocket, vmmLog: l.vmmLog };
}
