/**
 * The VMM jail (modelled on Firecracker's jailer): each QEMU runs
 *   in the sandbox's cgroup, with rlimits on file size and open files,
 *   in the sandbox's network namespace (when it has one),
 *   holding its host devices (TAP, /dev/kvm) as inherited fds opened there by root (host-fds.ts),
 *   in a new mount and PID namespace whose root is a tmpfs holding only /usr (read-only, for
 *   the QEMU binary and its libraries), a minimal /dev, its own /proc, and its own files bound
 *   at their host paths (kernel, initrd, root image and template files read-only; its run dir
 *   read-write), after pivot_root the host's tree is detached,
 *   as the unprivileged `kiln-vmm` user with no capabilities and no_new_privs,
 *   under QEMU's seccomp filter (`-sandbox`, added by buildQemuArgs).
 *
 * Files keep their host paths inside the jail, so the QEMU command line, a qcow2 overlay's
 * backing path and the orphan search (command line contains the state dir) are unchanged.
 *
 * Why a native launcher (native/kiln-vmm-launch.c, built into dist/ by `npm run build`): Node
 * cannot unshare, pivot_root or ioctl, and the chain of tools that did it before (bash,
 * prlimit, ip netns exec, perl, unshare, sh + mount, setpriv, each exec'ing the next) cost
 * ~45-50 ms of every create; the launcher makes the same system calls in the same order in
 * ~1.5 ms. Every path reaches it as an argument of its own; nothing is read by a shell.
 * QEMU is the launcher's only child and dies with it (a parent-death signal).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KilnError } from '../errors.js';
import { hostFdsOptions, type HostDevices } from './host-fds.js';

export const VMM_USER = 'kiln-vmm';

/** The launcher binary, next to the compiled daemon (packages/daemon/dist/kiln-vmm-launch). */
export const LAUNCHER_PATH = fileURLToPath(new URL('../kiln-vmm-launch', import.meta.url));

export interface VmmIdentity {
  uid: number;
  gid: number;
}

/** What one QEMU's jail holds. Every path is an absolute host path, kept as is inside. */
export interface JailPlan {
  /** Empty directory the jail's tmpfs root is mounted on (inside the private mount namespace only). */
  root: string;
  /** Files bound read-only (kernel, initrd, root image, template RAM/state/backing disk). */
  readOnly: string[];
  /** Directories and files bound read-write (the run dir, a template build's scratch disk). */
  readWrite: string[];
  /** Devices opened by root before the jail and inherited by QEMU as fds (its /dev holds only null, zero, urandom). */
  hostDevices: HostDevices;
  /** cgroup.procs files the launcher joins before anything else runs. */
  cgroupProcs: string[];
  rlimits: { fsizeBytes: number; nofile: number };
  netns: string | null;
  identity: VmmIdentity;
}

export interface LaunchCommand {
  file: string;
  args: string[];
}

/** The launcher's path; a KilnError naming the file and the fix when it was not built. */
export function launcherBinary(path = LAUNCHER_PATH): string {
  if (!existsSync(path)) {
    throw new KilnError('VMM_LAUNCHER_MISSING', `the VMM launcher ${path} is missing: run \`npm run build\` (it compiles packages/daemon/native/kiln-vmm-launch.c; needs gcc and libc6-dev)`, { status: 503 });
  }
  return path;
}

/**
 * The command that launches `argv` (QEMU binary + args) inside the jail described by `plan`:
 * the launcher stays as QEMU's parent (QEMU is pid 1 of its PID namespace; jailedChildPid).
 */
export function jailCommand(plan: JailPlan, argv: string[], launcher = LAUNCHER_PATH): LaunchCommand {
  const { uid, gid } = plan.identity;
  return {
    file: launcherBinary(launcher),
    args: [
      ...plan.cgroupProcs.flatMap((p) => ['--cgroup-procs', p]),
      '--fsize', String(plan.rlimits.fsizeBytes),
      '--nofile', String(plan.rlimits.nofile),
      ...(plan.netns ? ['--netns', plan.netns] : []),
      ...hostFdsOptions(plan.hostDevices),
      '--root', plan.root, '--uid', String(uid), '--gid', String(gid),
      ...plan.readOnly.flatMap((p) => ['--ro', p]),
      ...plan.readWrite.flatMap((p) => ['--rw', p]),
      '--', ...argv,
    ],
  };
}

/**
 * The unjailed launch (only with --insecure-no-jail, vmm/jail-policy.ts): the
 * launcher only enters the netns, opens the host devices and execs `argv` in place. With
 * neither to do, `argv` runs directly.
 */
export function plainCommand(netns: string | null, devices: HostDevices, argv: string[], launcher = LAUNCHER_PATH): LaunchCommand {
  const options = [...(netns ? ['--netns', netns] : []), ...hostFdsOptions(devices)];
  const [file = '', ...args] = argv;
  if (options.length === 0) return { file, args };
  return { file: launcherBinary(launcher), args: [...options, '--', ...argv] };
}

/** The `kiln-vmm` system user (created when missing: `useradd --system`). */
export function ensureVmmIdentity(user = VMM_USER): VmmIdentity {
  let entry = lookup('/etc/passwd', user);
  if (!entry) {
    try {
      execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', user], { stdio: 'pipe' });
    } catch (err) {
      throw new KilnError('VMM_USER_FAILED', `cannot create the VMM user ${user} (useradd --system): ${(err as Error).message}`, { status: 503, cause: err });
    }
    entry = lookup('/etc/passwd', user);
  }
  if (!entry) throw new KilnError('VMM_USER_FAILED', `user ${user} not found after useradd`, { status: 503 });
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

function lookup(file: string, name: string): string[] | null {
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':');
      if (f[0] === name) return f;
    }
  } catch {
    // no such file: no entry
  }
  return null;
}

/** Host pid of the process the launcher forked into the new PID namespace (QEMU, after its exec). */
export function jailedChildPid(launcherPid: number): number | null {
  try {
    const kids = readFileSync(`/proc/${launcherPid}/task/${launcherPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    return kids.length > 0 ? Number(kids[0]) : null;
  } catch {
    return null;
  }
}
