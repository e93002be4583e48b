/**
 * QEMU `microvm` driver. Each VM is a detached QEMU process (its own session), so VMs outlive
 * a daemon restart; the daemon finds them again by pid + start time + the `kiln-<id>` marker
 * on their command line.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, closeSync, existsSync, openSync, readFileSync, statSync } from 'node:fs';
import { copyFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { KilnError } from '../errors.js';
import { findProcesses, isSameProcess, readStartTime, signalProcess, sleep } from '../util/proc.js';
import { chooseAccel, hostTscKhz, type AccelChoice, type AccelRequest } from './accel.js';
import { detectCgroups, removeVmCgroup, setVmCpuDemoted, type CgroupMode } from './cgroup.js';
import { ensureVmmIdentity, jailCommand, jailedChildPid, plainCommand, type VmmIdentity } from './jail.js';
import { prepareJail } from './launcher.js';
import { hostDevicesFor, kvmAccelArgs, tapNetdevArgs } from './host-fds.js';
import type { DriverCapabilities, FoundVmm, VmExit, VmHandle, VmmDriver, VmSpec } from './driver.js';
import { vmPaths } from './driver.js';
import { QmpClient } from './qmp.js';
import { runDirLayout } from '../sandbox/run-dir.js';

export interface QemuDriverOptions {
  accel?: AccelRequest;
  /** QEMU binary; default `qemu-system-x86_64` from PATH. */
  binary?: string;
  /** TCG translation-cache size in MiB (TCG only). Default 128: FIELD-NOTES measured it halves RSS. */
  tcgTbSizeMiB?: number;
  /** How long start() waits for QEMU's QMP socket. Default 15000 ms. */
  startTimeoutMs?: number;
  /** Run QEMU jailed as the unprivileged kiln-vmm user (vmm/jail.ts). Default true when kilnd is root. */
  jail?: boolean;
}

/** QEMU's seccomp filter: no obsolete syscalls, no setuid/caps, no fork/exec, no affinity/priority. */
export const QEMU_SANDBOX = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';

export const vmMarker = (id: string): string => `kiln-${id}`;
/** MAC of a NIC without a backend (templates); each sandbox's guest gets its own at run time. */
const NO_PEER_MAC = '02:6b:00:00:00:00';

export function buildQemuArgs(spec: VmSpec, accel: AccelChoice['accel'], opts: { tcgTbSizeMiB: number; tscKhz: number | null }): string[] {
  const p = vmPaths(spec.runDir);
  const kernelArgs = [spec.cmdline, 'console=ttyS0', 'edd=off', `kiln.hostname=${spec.hostname ?? spec.id}`];
  if (accel === 'tcg' && opts.tscKhz !== null) {
    // Without a calibrated TSC the guest may hang calibrating against the PIT under TCG.
    kernelArgs.push(`tsc_early_khz=${opts.tscKhz}`, 'tsc=reliable', `lpj=${Math.round((opts.tscKhz * 1000) / 250)}`);
  }
  if (spec.memory?.mode === 'template') {
    // The guest leaves free page reporting off (guest-init): its clones map this RAM file
    // read-only, and QEMU 10 refuses to discard RAM of a read-only file ("Discarding RAM with
    // readonly files is not supported", one log line per report); a clone inherits the off.
    kernelArgs.push('kiln.page_reporting=off');
  }
  const accelArgs =
    accel === 'kvm'
      ? [...kvmAccelArgs(), '-cpu', 'host']
      : // +arat (APIC timer always running): without it the guest's LAPIC timer may stop in deep
        // idle, microvm has no HPET/PIT to broadcast from, so the kernel never goes tickless and
        // every vCPU takes 250 timer interrupts a second (docs/fast-start.md, idle CPU).
        ['-accel', `tcg,tb-size=${opts.tcgTbSizeMiB}`, '-cpu', 'qemu64,+arat'];
  // Guest RAM is always a named backend ("mem"), so every VM of a shape has the same RAM
  // block layout and any snapshot can be restored into any of them.
  const mem = spec.memory;
  const memObject =
    mem === undefined
      ? `memory-backend-ram,id=mem,size=${spec.memoryMiB}M`
      : mem.mode === 'template'
        ? `memory-backend-file,id=mem,size=${spec.memoryMiB}M,mem-path=${mem.file},share=on`
        : `memory-backend-file,id=mem,size=${spec.memoryMiB}M,mem-path=${mem.file},share=off,readonly=on,rom=off`;
  return [
    '-name', `${vmMarker(spec.id)},process=${vmMarker(spec.id)}`,
    // qboot loads -kernel directly; Debian's default microvm firmware (SeaBIOS) needs option
    // ROMs for that and, with x-option-roms=off, hangs at "No bootable device".
    '-M', 'microvm,x-option-roms=off,rtc=on,memory-backend=mem',
    '-bios', 'qboot.rom',
    '-object', memObject,
    ...accelArgs,
    '-m', `${spec.memoryMiB}`,
    '-smp', `${spec.vcpus}`,
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
    '-sandbox', QEMU_SANDBOX,
    '-kernel', spec.kernel,
    '-initrd', spec.initrd,
    '-append', kernelArgs.join(' ').trim(),
    '-drive', `id=root,file=${spec.rootfs},format=raw,if=none,readonly=on`,
    '-device', 'virtio-blk-device,drive=root,serial=kiln-root',
    '-drive', `id=scratch,file=${spec.scratch},format=${spec.scratchFormat ?? 'raw'},if=none,discard=unmap`,
    '-device', 'virtio-blk-device,drive=scratch,serial=kiln-scratch',
    ...(spec.net ? tapNetdevArgs() : []),
    '-device', `virtio-net-device,id=nic0,mac=${spec.net?.mac ?? NO_PEER_MAC}${spec.net ? ',netdev=net0' : ''}`,
    // Free page reporting: the guest hands RAM it freed back (2 MiB+ blocks, ~2 s after the
    // free) and QEMU drops it (madvise DONTNEED), so the VMM's RSS falls after a guest load.
    // Works where guest RAM is anonymous (cold boots, forks restored from a state file);
    // template guests leave it off (see above).
    '-device', 'virtio-balloon-device,free-page-reporting=on',
    '-device', 'virtio-serial-device',
    '-chardev', `socket,id=agent,path=${p.agentSocket},server=on,wait=off`,
    '-device', 'virtserialport,chardev=agent,name=org.kiln.agent',
    '-chardev', `socket,id=ctl,path=${p.guestctlSocket},server=on,wait=off`,
    '-device', 'virtserialport,chardev=ctl,name=org.kiln.guestctl',
    // Guest output reaches the host only through kilnd (never a QEMU-written file, which a
    // guest could grow without bound): console and service logs are socket servers that kilnd
    // reads; while nobody is connected QEMU discards console output and the guest's log
    // forwarder waits. Every VM of an image has this same device set (snapshots rely on it).
    '-chardev', `socket,id=logs,path=${p.logsSocket},server=on,wait=off`,
    '-device', 'virtserialport,chardev=logs,name=org.kiln.logs',
    '-chardev', `socket,id=con,path=${p.consoleSocket},server=on,wait=off`,
    '-serial', 'chardev:con',
    '-qmp', `unix:${p.qmpSocket},server=on,wait=off`,
    ...(spec.incoming ? ['-incoming', 'defer'] : []),
  ];
}

export class QemuDriver implements VmmDriver {
  readonly name = 'qemu-microvm';
  private readonly accel: AccelChoice;
  private readonly binary: string;
  private readonly tbSize: number;
  private readonly startTimeoutMs: number;
  private readonly children = new Map<number, ChildProcess>();
  private readonly version: string;
  /** The VMM user and cgroup layout when QEMU is jailed; null = QEMU runs as kilnd's user. */
  readonly jail: { identity: VmmIdentity; cgroups: CgroupMode } | null;

  constructor(opts: QemuDriverOptions = {}) {
    this.jail = (opts.jail ?? process.getuid?.() === 0) ? { identity: ensureVmmIdentity(), cgroups: detectCgroups() } : null;
    this.accel = chooseAccel(opts.accel ?? 'auto');
    this.binary = opts.binary ?? 'qemu-system-x86_64';
    this.tbSize = opts.tcgTbSizeMiB ?? 128;
    this.startTimeoutMs = opts.startTimeoutMs ?? 15_000;
    // A snapshot restores only into the same QEMU with the same device set: the version carries
    // both, and it is part of every template's key (a changed device list invalidates templates).
    this.version = `${qemuVersion(this.binary)}+${layoutFingerprint(this.accel.accel, this.tbSize)}`;
  }

  capabilities(): DriverCapabilities {
    return { name: this.name, version: this.version, accel: this.accel.accel, accelReason: this.accel.reason, snapshot: true, restore: true, pause: true };
  }

  async start(spec: VmSpec): Promise<VmHandle> {
    const paths = vmPaths(spec.runDir);
    const args = buildQemuArgs(spec, this.accel.accel, { tcgTbSizeMiB: this.tbSize, tscKhz: hostTscKhz() });
    const jail = this.jail ? prepareJail(spec, { accel: this.accel.accel, tbSizeMiB: this.tbSize, ...this.jail }) : null;
    const logFd = openSync(paths.vmmLog, 'a');
    let child: ChildProcess;
    try {
      // With a network, QEMU runs inside the sandbox's namespace, where its TAP is opened for
      // it (vmm/host-fds.ts), and can reach nothing the sandbox cannot. The launcher enters
      // the namespace; unjailed it then execs QEMU in place (vmm/jail.ts).
      const { file, args: argv } = jail
        ? jailCommand(jail.plan, [this.binary, ...args])
        : plainCommand(spec.net?.netns ?? null, hostDevicesFor(spec, this.accel.accel), [this.binary, ...args]);
      child = spawn(file, argv, { detached: true, stdio: ['ignore', logFd, logFd] });
    } catch (err) {
      this.dropCgroup(spec.id);
      throw err;
    } finally {
      closeSync(logFd);
    }
    child.unref();
    let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
    let spawnError: Error | null = null;
    child.once('error', (err) => (spawnError = err));
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      if (child.pid !== undefined) this.children.delete(child.pid);
    });

    const tSpawn = performance.now();
    const deadline = Date.now() + this.startTimeoutMs;
    while (Date.now() < deadline) {
      if (spawnError !== null) {
        this.dropCgroup(spec.id);
        const e: Error = spawnError;
        throw new KilnError('VMM_START_FAILED', `cannot run ${this.binary}: ${e.message}`, { cause: e });
      }
      if (exited !== null) {
        this.dropCgroup(spec.id);
        throw new KilnError('VMM_START_FAILED', `QEMU exited during start-up: ${tail(paths.vmmLog)}`);
      }
      if (child.pid !== undefined && existsSync(paths.qmpSocket)) {
        // Jailed, QEMU is pid 1 of its own PID namespace: kilnd tracks its host-side pid (the
        // launcher's only child), whose command line carries the marker once it exec'd QEMU.
        const pid = jail ? jailedChildPid(child.pid) : child.pid;
        const startTime = pid === null ? null : readStartTime(pid);
        if (pid !== null && startTime !== null && isSameProcess({ pid, startTime }, vmMarker(spec.id))) {
          this.children.set(pid, child);
          return { id: spec.id, pid, startTime, accel: this.accel.accel, paths, timings: { launchMs: Math.round(performance.now() - tSpawn) } };
        }
      }
      await sleep(5); // QEMU opens its QMP socket ~50–150 ms after exec; every poll is a stat
    }
    if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    this.dropCgroup(spec.id);
    throw new KilnError('VMM_START_FAILED', `QEMU did not open its QMP socket within ${this.startTimeoutMs} ms: ${tail(paths.vmmLog)}`);
  }

  private async qmp<T>(vm: VmHandle, fn: (q: QmpClient) => Promise<T>): Promise<T> {
    const q = await QmpClient.connect(vm.paths.qmpSocket, 5000);
    try {
      return await fn(q);
    } finally {
      q.close();
    }
  }

  findVmms(runRoot: string): FoundVmm[] {
    return findQemuVmms(runRoot);
  }

  async pause(vm: VmHandle): Promise<void> {
    await this.qmp(vm, (q) => q.execute('stop'));
  }

  async resume(vm: VmHandle): Promise<void> {
    await this.qmp(vm, (q) => q.execute('cont'));
  }

  async snapshot(vm: VmHandle, opts: { stateFile: string; ignoreShared: boolean; timeoutMs?: number }): Promise<{ durationMs: number; bytes: number }> {
    const t0 = performance.now();
    // A jailed QEMU sees only its run dir: it writes the state there and kilnd moves it.
    const runDir = dirname(vm.paths.qmpSocket);
    const target = this.jail && dirname(opts.stateFile) !== runDir ? runDirLayout(runDir).snapshotState : opts.stateFile;
    await this.qmp(vm, async (q) => {
      await q.execute('stop');
      await q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: opts.ignoreShared }] });
      await q.execute('migrate', { uri: `file:${target}` });
      await waitMigration(q, opts.timeoutMs ?? 120_000, 'snapshot');
    });
    if (target !== opts.stateFile) await moveFile(target, opts.stateFile);
    if (this.jail) chownSync(opts.stateFile, 0, 0);
    return { durationMs: Math.round(performance.now() - t0), bytes: statSync(opts.stateFile).size };
  }

  async restore(spec: VmSpec, opts: { ignoreShared: boolean; timeoutMs?: number; beforeResume?: (vm: VmHandle) => Promise<void> }): Promise<VmHandle> {
    if (!spec.incoming) throw new KilnError('INVALID_ARGUMENT', 'restore needs spec.incoming (a state file)');
    const vm = await this.start(spec);
    const timings = vm.timings ?? {};
    let t = performance.now();
    const mark = (phase: string) => {
      const now = performance.now();
      timings[phase] = Math.round(now - t);
      t = now;
    };
    try {
      await this.qmp(vm, async (q) => {
        mark('qmpConnectMs');
        await q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: opts.ignoreShared }] });
        await q.execute('migrate-incoming', { uri: `file:${spec.incoming}` });
        await waitMigration(q, opts.timeoutMs ?? 60_000, 'restore');
        mark('incomingMs');
        await opts.beforeResume?.(vm);
        mark('beforeResumeMs');
        await q.execute('cont');
        mark('contMs');
      });
      vm.timings = timings;
    } catch (err) {
      await this.kill(vm).catch(() => undefined);
      throw new KilnError('VMM_RESTORE_FAILED', `restore of ${spec.id} failed: ${(err as Error).message}; ${tail(vm.paths.vmmLog, 600)}`, { cause: err });
    }
    return vm;
  }

  isAlive(vm: VmHandle): boolean {
    return isSameProcess(vm, vmMarker(vm.id));
  }

  async stop(vm: VmHandle, opts: { timeoutMs?: number } = {}): Promise<void> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    if (!this.isAlive(vm)) return;
    try {
      const qmp = await QmpClient.connect(vm.paths.qmpSocket, Math.min(2000, timeoutMs));
      try {
        await qmp.execute('quit', undefined, Math.min(2000, timeoutMs)).catch(() => undefined);
      } finally {
        qmp.close();
      }
    } catch {
      // QMP unreachable: fall through to the deadline and SIGKILL.
    }
    if (await this.waitGone(vm, timeoutMs)) {
      await this.removeCgroup(vm.id);
      return;
    }
    await this.kill(vm);
  }

  async kill(vm: VmHandle): Promise<void> {
    signalProcess(vm, 'SIGKILL', vmMarker(vm.id));
    if (!(await this.waitGone(vm, 10_000))) {
      throw new KilnError('VMM_KILL_FAILED', `QEMU pid ${vm.pid} of ${vm.id} survived SIGKILL for 10 s`);
    }
    await this.removeCgroup(vm.id);
  }

  /** Removes a VM's cgroup once its processes (QEMU and its launcher) have left it. */
  private async removeCgroup(id: string): Promise<void> {
    if (!this.jail) return;
    for (let i = 0; i < 50; i++) {
      if (removeVmCgroup(this.jail.cgroups, id)) return;
      await sleep(20);
    }
  }

  private dropCgroup(id: string): void {
    if (this.jail) void this.removeCgroup(id);
  }

  setCpuDemoted(vm: VmHandle, demoted: boolean): void {
    if (this.jail) setVmCpuDemoted(this.jail.cgroups, vm.id, demoted);
  }

  async wait(vm: VmHandle): Promise<VmExit> {
    const child = this.children.get(vm.pid);
    if (child && child.exitCode === null && child.signalCode === null) {
      const exit = await new Promise<VmExit>((resolve) => {
        child.once('exit', (code, signal) =>
          resolve({ reason: signal === null ? 'exited' : 'killed', exitCode: code, signal }),
        );
      });
      await this.removeCgroup(vm.id);
      return exit;
    }
    // Adopted VM (not our child): watch its identity.
    while (this.isAlive(vm)) await sleep(250);
    await this.removeCgroup(vm.id);
    return { reason: 'vanished', exitCode: null, signal: null };
  }

  private async waitGone(vm: VmHandle, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.isAlive(vm)) return true;
      await sleep(20);
    }
    return !this.isAlive(vm);
  }
}

/** QEMUs (and their launchers) by the run dir and `kiln-<id>` marker on their command lines. */
export function findQemuVmms(runRoot: string): FoundVmm[] {
  const found: FoundVmm[] = [];
  for (const p of findProcesses(`${runRoot}/`)) {
    const id = /kiln-(sb-[0-9a-f]{12})/.exec(p.cmdline.join(' '))?.[1];
    if (id) found.push({ id, pid: p.pid, kill: () => signalProcess(p, 'SIGKILL', vmMarker(id)) });
  }
  return found;
}

/** Hash of the QEMU command line for a canonical VM: changes whenever the device set does. */
export function layoutFingerprint(accel: AccelChoice['accel'], tbSize: number): string {
  const canonical: VmSpec = {
    id: 'sb-000000000000',
    runDir: '/run-dir',
    memoryMiB: 1024,
    vcpus: 2,
    kernel: '/k',
    initrd: '/i',
    rootfs: '/r',
    scratch: '/s',
    cmdline: '',
  };
  const args = buildQemuArgs(canonical, accel, { tcgTbSizeMiB: tbSize, tscKhz: 1 });
  return createHash('sha256').update(args.join('\0')).digest('hex').slice(0, 8);
}

function qemuVersion(binary: string): string {
  try {
    const out = execFileSync(binary, ['--version'], { encoding: 'utf8', timeout: 10_000 });
    return /version\s+([^\s]+)/.exec(out)?.[1] ?? 'unknown';
  } catch (err) {
    throw new KilnError('VMM_NOT_FOUND', `cannot run ${binary} --version (install qemu-system-x86 from bookworm-backports: scripts/setup.sh): ${(err as Error).message}`, { status: 503 });
  }
}

/** Polls query-migrate until the migration completes; throws on failure or timeout. */
async function waitMigration(q: QmpClient, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const st = await q.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
    if (st.status === 'completed') return;
    if (st.status === 'failed' || st.status === 'cancelled') {
      throw new KilnError('VMM_MIGRATION_FAILED', `${what} migration ${st.status}: ${st['error-desc'] ?? 'no reason given'}`);
    }
    await sleep(st.status === undefined || st.status === 'none' ? 5 : 10);
  }
  throw new KilnError('VMM_MIGRATION_TIMEOUT', `${what} did not complete within ${timeoutMs} ms`);
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await copyFile(from, to);
    await rm(from, { force: true });
  }
}

function tail(path: string, bytes = 2000): string {
  try {
    const s = readFileSync(path, 'utf8');
    return s.slice(-bytes).trim() || '(no output)';
  } catch {
    return '(no log)';
  }
}
