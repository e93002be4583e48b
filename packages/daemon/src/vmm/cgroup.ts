/**
 * One cgroup per VM (`kiln/<vm id>`) with its memory, CPU and pids limits. cgroup v2 where the
 * host has it (`/sys/fs/cgroup/cgroup.controllers`); otherwise the v1 memory, cpu and pids
 * hierarchies (this development host is v1-only). The launcher joins the VM's cgroups before
 * QEMU exists; the driver removes them once QEMU is gone; kilnd removes empty orphans at start.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../errors.js';

export const CGROUP_ROOT = '/sys/fs/cgroup';
/** Parent of every VM's cgroup (in each hierarchy). */
export const CGROUP_PARENT = 'kiln';
/** CFS period used for cpu.max / cfs_period_us. */
export const CPU_PERIOD_US = 100_000;

export interface VmLimits {
  memoryBytes: number;
  /** CPU quota in vCPUs (quota = vcpus × period). */
  vcpus: number;
  pids: number;
}

export type CgroupMode = { kind: 'v2'; root: string } | { kind: 'v1'; memory: string; cpu: string; pids: string } | { kind: 'none'; reason: string };

export function detectCgroups(root = CGROUP_ROOT): CgroupMode {
  if (existsSync(join(root, 'cgroup.controllers'))) return { kind: 'v2', root };
  const memory = join(root, 'memory');
  const cpu = join(root, 'cpu');
  const pids = join(root, 'pids');
  if ([memory, cpu, pids].every((d) => existsSync(join(d, 'cgroup.procs')))) return { kind: 'v1', memory, cpu, pids };
  return { kind: 'none', reason: `no cgroup v2 at ${root} and no v1 memory/cpu/pids hierarchies` };
}

/** Directories of one VM's cgroup, one per hierarchy (one for v2). */
export function cgroupDirs(mode: CgroupMode, id: string): string[] {
  if (mode.kind === 'v2') return [join(mode.root, CGROUP_PARENT, id)];
  if (mode.kind === 'v1') return [mode.memory, mode.cpu, mode.pids].map((h) => join(h, CGROUP_PARENT, id));
  return [];
}

function write(dir: string, file: string, value: string): void {
  try {
    writeFileSync(join(dir, file), value);
  } catch (err) {
    throw new KilnError('CGROUP_FAILED', `cannot write ${value} to ${join(dir, file)}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The parent of all VM cgroups has no CPU quota of its own, but half the default weight
 * (cpu.shares 512 / cpu.weight 50): when guests spin, kilnd and the host's other processes win
 * two thirds of contended CPU, and a VM waking up competes only with other VMs' fair shares.
 * A shared quota (it used to be the host's cores − ½) throttled every VM at once once one VM
 * had spent it, so a neighbour woke into a throttled window and waited for the next period
 * (docs/hardening.md, "Neighbour latency").
 */
export const VMS_CPU_SHARES = 512;
export const VMS_CPU_WEIGHT = 50;

/**
 * A VM's CPU weight while it keeps its vCPUs busy (lifecycle/cpu-balancer.ts): 1/8 of the
 * default (cpu.shares 1024 / cpu.weight 100), so a neighbour waking next to it gets ~8/9 of
 * a contended core instead of half.
 */
export const DEMOTED_CPU_SHARES = 128;
export const DEMOTED_CPU_WEIGHT = 12;
/** The kernel's default CPU weight of a cgroup (v1 cpu.shares / v2 cpu.weight). */
const DEFAULT_CPU_SHARES = 1024;
const DEFAULT_CPU_WEIGHT = 100;

/** Sets a VM's CPU weight: low while it is demoted, the default otherwise. */
export function setVmCpuDemoted(mode: CgroupMode, id: string, demoted: boolean): void {
  if (mode.kind === 'v2') write(join(mode.root, CGROUP_PARENT, id), 'cpu.weight', String(demoted ? DEMOTED_CPU_WEIGHT : DEFAULT_CPU_WEIGHT));
  else if (mode.kind === 'v1') write(join(mode.cpu, CGROUP_PARENT, id), 'cpu.shares', String(demoted ? DEMOTED_CPU_SHARES : DEFAULT_CPU_SHARES));
}

/** Creates the VM's cgroup with its limits; returns the cgroup.procs files to join. */
export function createVmCgroup(mode: CgroupMode, id: string, limits: VmLimits): string[] {
  if (mode.kind === 'none') return [];
  const quota = String(Math.round(limits.vcpus * CPU_PERIOD_US));
  try {
    if (mode.kind === 'v2') {
      const parent = join(mode.root, CGROUP_PARENT);
      mkdirSync(parent, { recursive: true });
      write(mode.root, 'cgroup.subtree_control', '+memory +cpu +pids');
      write(parent, 'cgroup.subtree_control', '+memory +cpu +pids');
      write(parent, 'cpu.max', `max ${CPU_PERIOD_US}`);
      write(parent, 'cpu.weight', String(VMS_CPU_WEIGHT));
      const [dir] = cgroupDirs(mode, id) as [string];
      mkdirSync(dir, { recursive: true });
      write(dir, 'memory.max', String(limits.memoryBytes));
      write(dir, 'memory.swap.max', '0');
      write(dir, 'cpu.max', `${quota} ${CPU_PERIOD_US}`);
      write(dir, 'pids.max', String(limits.pids));
      return [join(dir, 'cgroup.procs')];
    }
    const [mem, cpu, pids] = cgroupDirs(mode, id) as [string, string, string];
    for (const d of [mem, cpu, pids]) mkdirSync(d, { recursive: true });
    const cpuParent = join(mode.cpu, CGROUP_PARENT);
    // No quota on the parent (an older kiln set one; a child's quota above it is EINVAL).
    if (readCgroupValue(cpuParent, 'cpu.cfs_quota_us') !== '-1') write(cpuParent, 'cpu.cfs_quota_us', '-1');
    write(cpuParent, 'cpu.shares', String(VMS_CPU_SHARES));
    write(mem, 'memory.limit_in_bytes', String(limits.memoryBytes));
    write(cpu, 'cpu.cfs_period_us', String(CPU_PERIOD_US));
    write(cpu, 'cpu.cfs_quota_us', quota);
    write(pids, 'pids.max', String(limits.pids));
    return [mem, cpu, pids].map((d) => join(d, 'cgroup.procs'));
  } catch (err) {
    removeVmCgroup(mode, id);
    throw err instanceof KilnError ? err : new KilnError('CGROUP_FAILED', `cannot create the cgroup of ${id}: ${(err as Error).message}`, { cause: err });
  }
}

function readCgroupValue(dir: string, file: string): string | null {
  try {
    return readFileSync(join(dir, file), 'utf8').trim();
  } catch {
    return null;
  }
}

/** Removes the VM's cgroup directories that are empty. Returns whether none is left. */
export function removeVmCgroup(mode: CgroupMode, id: string): boolean {
  let all = true;
  for (const d of cgroupDirs(mode, id)) {
    try {
      rmdirSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') all = false;
    }
  }
  return all;
}

/** Removes empty VM cgroups whose id `keep` rejects (cgroups with live processes are left alone). */
export function removeOrphanCgroups(mode: CgroupMode, keep: (id: string) => boolean): string[] {
  const parents = mode.kind === 'v2' ? [join(mode.root, CGROUP_PARENT)] : mode.kind === 'v1' ? [mode.memory, mode.cpu, mode.pids].map((h) => join(h, CGROUP_PARENT)) : [];
  const removed = new Set<string>();
  for (const p of parents) {
    if (!existsSync(p)) continue;
    for (const name of readdirSync(p, { withFileTypes: true })) {
      if (!name.isDirectory() || keep(name.name)) continue;
      try {
        rmdirSync(join(p, name.name));
        removed.add(name.name);
      } catch {
        // busy: a VM of another kilnd (or a template build) still lives in it
      }
    }
  }
  return [...removed];
}
