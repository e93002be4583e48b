/**
 * The VMM jail (modelled on Firecracker's jailer): each QEMU runs
 *   in the sandbox's cgroup, with rlimits on file size and open files,
 *   in the sandbox's network namespace (when it has one),
 *   holding its host devices (TAP, /dev/kvm) as inherited fds opened there by root (host-fds.ts),
 *   in a new mount and PID namespace whose root is a tmpfs holding only /usr (read-only, for
 *   the QEMU binary and its libraries), a minimal /dev, its own /proc, and its own files bound
 *   at their host paths (kernel, initrd, root image and template files read-only; its run dir
 *   read-write), after pivot_root the host's tree is detached,
 *   as the unprivileged `kiln-vmm` user with no capabilities and no_new_privs (setpriv),
 *   under QEMU's seccomp filter (`-sandbox`, added by buildQemuArgs).
 *
 * Files keep their host paths inside the jail, so the QEMU command line, a qcow2 overlay's
 * backing path and the orphan search (command line contains the state dir) are unchanged.
 *
 * Why a shell launcher and not a native helper: every step is a util-linux/iproute2 tool that
 * does one thing (prlimit, ip netns exec, unshare, mount, pivot_root, setpriv) and execs the
 * next; Node cannot itself unshare or pivot_root. The script below is a constant; paths reach
 * it only as positional arguments, never spliced into its text.
 */
import { execFileSync } from 'node:child_process';
import { chownSync, readFileSync, readdirSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../errors.js';
import { hostFdsCommand, type HostDevices } from './host-fds.js';

export const VMM_USER = 'kiln-vmm';

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

/**
 * Stage 1 (host PID namespace, bash: dash cannot close fds above 9): close every fd but
 * stdio (whatever kilnd's own parent leaked to it without close-on-exec must not reach QEMU),
 * join the sandbox's cgroups, then exec the rest.
 * Args: cgroup.procs files…, `--`, command…
 */
const JOIN_CGROUPS = `for p in /proc/$$/fd/*; do n=\${p##*/}; [ "$n" -gt 2 ] && eval "exec $n>&-"; done
while [ "$1" != -- ]; do echo 0 > "$1" || exit 97; shift; done; shift; exec "$@"`;

/**
 * Stage 2 (new mount + PID namespace, still root): build the jail, pivot into it, drop to the
 * VMM user (no supplementary groups) and exec QEMU. Args: root uid gid, then `ro` files… `rw`
 * paths…, `--`, qemu argv. QEMU ends up as pid 1 of its PID namespace: if it dies, the
 * namespace dies. The host-device fds opened before this stage pass through unchanged.
 */
const BUILD_JAIL = `set -eu
root=$1 uid=$2 gid=$3; shift 3
mount --make-rprivate /
mount -t tmpfs -o mode=0755,size=4m,nosuid kiln-jail "$root"
cd "$root"
mkdir -p usr dev proc tmp .old
for l in bin sbin lib lib32 lib64 libx32; do [ -L /$l ] && ln -s "$(readlink /$l)" $l; done
mount --bind /usr usr; mount -o remount,bind,ro,nosuid,nodev usr
mount -t tmpfs -o mode=0755,size=64k,nosuid,noexec kiln-dev dev
mount -t proc -o nosuid,nodev,noexec proc proc
mount -t tmpfs -o mode=1777,size=1m,nosuid,nodev,noexec kiln-tmp tmp
bind() { # bind SRC with FLAGS at the same path inside
  if [ -d "$1" ]; then mkdir -p ".$1"; else mkdir -p ".$(dirname "$1")"; [ -e ".$1" ] || : > ".$1"; fi
  mount --bind "$1" ".$1"; mount -o "remount,bind,$2" ".$1"
}
mode=ro
for a; do
  shift
  case "$a" in
    ro|rw) mode=$a ;;
    --) break ;;
    *) case $mode in
         ro) bind "$a" ro,nosuid,nodev,noexec ;;
         rw) bind "$a" nosuid,nodev,noexec ;;
       esac ;;
  esac
done
for d in null zero urandom; do : > dev/$d; mount --bind /dev/$d dev/$d; done
pivot_root . .old
cd /
umount -l /.old
rmdir /.old
mount -o remount,bind,ro,nosuid /
exec setpriv --reuid="$uid" --regid="$gid" --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
`;

/** The command that launches `argv` (QEMU binary + args) inside the jail described by `plan`. */
export function jailCommand(plan: JailPlan, argv: string[]): { file: string; args: string[] } {
  const inner = [
    'unshare', '--mount', '--pid', '--fork', '--kill-child=SIGKILL', '--',
    'sh', '-c', BUILD_JAIL, 'kiln-jail',
    plan.root, String(plan.identity.uid), String(plan.identity.gid),
    'ro', ...plan.readOnly, 'rw', ...plan.readWrite, '--',
    ...argv,
  ];
  const netns = plan.netns ? ['ip', 'netns', 'exec', plan.netns] : [];
  // The devices are opened inside the netns (a TAP is found in the namespace of the open) and
  // before the new mount namespace hides the host's /dev.
  const limited = ['prlimit', `--fsize=${plan.rlimits.fsizeBytes}`, `--nofile=${plan.rlimits.nofile}`, '--', ...netns, ...hostFdsCommand(plan.hostDevices), ...inner];
  return { file: 'bash', args: ['-c', JOIN_CGROUPS, 'kiln-vmm-launch', ...plan.cgroupProcs, '--', ...limited] };
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

/** Gives a directory tree (a finished template) back to root, so no VMM uid owns a template. */
export function reclaimOwnership(path: string): void {
  const st = lstatSync(path);
  if (st.isSymbolicLink()) return;
  if (st.uid !== 0 || st.gid !== 0) chownSync(path, 0, 0);
  if (st.isDirectory()) for (const name of readdirSync(path)) reclaimOwnership(join(path, name));
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
