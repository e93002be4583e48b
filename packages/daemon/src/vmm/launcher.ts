/**
 * Turns a VmSpec into a jailed launch: which files the VM's jail holds (and how), its cgroup
 * limits and rlimits, and the ownership its run dir needs. The jail itself is jail.ts.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { runDirLayout } from '../sandbox/run-dir.js';
import type { Accel } from './accel.js';
import { createVmCgroup, type CgroupMode, type VmLimits } from './cgroup.js';
import type { VmSpec } from './driver.js';
import { hostDevicesFor } from './host-fds.js';
import type { JailPlan, VmmIdentity } from './jail.js';
import { createVmmFile, giveFileToVmm } from './vmm-dir.js';

const MiB = 1024 * 1024;
/**
 * QEMU's own memory on top of guest RAM: its heap, device emulation, page tables and the
 * page cache of its disk I/O (charged to its cgroup), plus the TCG translation cache
 * (tb-size) under TCG. Measured: a 1024 MiB guest that filled its RAM had QEMU at 1133 MiB
 * RSS (tb-size 128); with 256 MiB here the cgroup sat at its limit and reclaimed, and the
 * neighbour's exec latency doubled in one of three runs.
 */
export const VMM_OVERHEAD_MIB = 384;
/** QEMU threads: vCPUs, the I/O thread pool (up to 64 workers), RCU, call_rcu, migration. */
export const VMM_PIDS_MAX = 256;
/** Open files of QEMU (disks, sockets, eventfds, the TAP queue). */
export const VMM_NOFILE = 1024;

export function vmLimits(spec: VmSpec, accel: Accel, tbSizeMiB: number): VmLimits {
  const overheadMiB = VMM_OVERHEAD_MIB + (accel === 'tcg' ? tbSizeMiB : 0);
  return { memoryBytes: (spec.memoryMiB + overheadMiB) * MiB, vcpus: spec.vcpus, pids: VMM_PIDS_MAX };
}

/** Virtual size and backing file of a disk image (`qemu-img info`). */
function diskInfo(path: string): { virtualBytes: number; backing: string | null } {
  const out = execFileSync('qemu-img', ['info', '--output=json', '-U', path], { encoding: 'utf8', timeout: 10_000 });
  const j = JSON.parse(out) as { 'virtual-size': number; 'full-backing-filename'?: string; 'backing-filename'?: string };
  const b = j['full-backing-filename'] ?? j['backing-filename'] ?? null;
  return { virtualBytes: j['virtual-size'], backing: b === null ? null : resolve(dirname(path), b) };
}

export interface LaunchPrep {
  plan: JailPlan;
  limits: VmLimits;
}

/**
 * Prepares the VM's jail on the host: the files QEMU writes in place (its disk, a template's
 * RAM file) handed to the VMM user, the jail mountpoint, the cgroup with limits. The run dir
 * stays root's; `vmmDir` (already the VMM user's, vmm-dir.ts) is the only directory bound
 * read-write. Returns the plan for jailCommand().
 */
export function prepareJail(spec: VmSpec, o: { accel: Accel; tbSizeMiB: number; identity: VmmIdentity; cgroups: CgroupMode; vmmDir: string }): LaunchPrep {
  const root = runDirLayout(spec.runDir).jailRoot;
  mkdirSync(root, { recursive: true, mode: 0o700 });
  chownSync(root, 0, 0);
  const readOnly = [spec.kernel, spec.initrd, spec.rootfs];
  const readWrite = [o.vmmDir];
  if (existsSync(spec.scratch)) giveFileToVmm(spec.scratch, o.identity);
  readWrite.push(spec.scratch);
  if (spec.memory?.mode === 'template') {
    // QEMU maps (and writes) the template's RAM file but may not create it: root does.
    createVmmFile(spec.memory.file, spec.memoryMiB * MiB, o.identity);
    readWrite.push(spec.memory.file);
  }
  const disk = diskInfo(spec.scratch);
  if (disk.backing) readOnly.push(disk.backing);
  if (spec.incoming) readOnly.push(spec.incoming);
  if (spec.memory?.mode === 'clone') readOnly.push(spec.memory.file);
  const limits = vmLimits(spec, o.accel, o.tbSizeMiB);
  const ramBytes = spec.memoryMiB * MiB;
  const fsizeBytes = Math.max(disk.virtualBytes, ramBytes) + 256 * MiB;
  const cgroupProcs = createVmCgroup(o.cgroups, spec.id, limits);
  return {
    limits,
    plan: {
      root,
      readOnly: [...new Set(readOnly)].filter((p) => statSync(p, { throwIfNoEntry: false }) !== undefined),
      readWrite: [...new Set(readWrite)],
      // The TAP and /dev/kvm are opened by the launcher as root and inherited (host-fds.ts):
      // QEMU needs no device node, no kvm group and no TAP it owns.
      hostDevices: hostDevicesFor(spec, o.accel),
      cgroupProcs,
      rlimits: { fsizeBytes, nofile: VMM_NOFILE },
      netns: spec.net?.netns ?? null,
      identity: o.identity,
    },
  };
}
