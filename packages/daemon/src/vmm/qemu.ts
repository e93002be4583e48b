/**
 * QEMU `microvm` driver. Each VM is a detached QEMU process (its own session), so VMs outlive
 * a daemon restart; the daemon finds them again by pid + start time + the `kiln-<id>` marker
 * on their command line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { KilnError } from '../errors.js';
import { isSameProcess, readStartTime, signalProcess, sleep } from '../util/proc.js';
import { chooseAccel, hostTscKhz, type AccelChoice, type AccelRequest } from './accel.js';
import { buildQemuArgs, layoutFingerprint, qemuVersion, vmMarker } from './qemu-args.js';
import { findQemuVmms } from './find-vmms.js';
import { DEFAULT_TCG_TB_SIZE_MIB } from './tb-size.js';
import { detectCgroups, removeVmCgroup, setVmCpuDemoted, type CgroupMode } from './cgroup.js';
import { ensureVmmIdentity, jailCommand, jailedChildPid, plainCommand, type VmmIdentity } from './jail.js';
import { prepareJail } from './launcher.js';
import { decideJail, insecureNoJailFromEnv, jailRefused, type JailDecision } from './jail-policy.js';
import { hostDevicesFor } from './host-fds.js';
import type { DriverCapabilities, FoundVmm, VmExit, VmHandle, VmmDriver, VmSpec } from './driver.js';
import { vmPaths } from './driver.js';
import { QmpClient, waitMigration } from './qmp.js';
import { hotplugDisk, type HotDisk } from './disk-hotplug.js';
import { receiveState } from './migrate-out.js';
import { flattenDisk } from './disk-flatten.js';
import { openVmmLog, prepareVmmDir, sealVmmDir } from './vmm-dir.js';
import { migrateSocketIn, runDirLayout } from '../sandbox/run-dir.js';

export interface QemuDriverOptions {
  accel?: AccelRequest;
  /** QEMU binary; default `qemu-system-x86_64` from PATH. */
  binary?: string;
  /** TCG translation-cache size in MiB (TCG only). Default 512 (vmm/tb-size.ts). */
  tcgTbSizeMiB?: number;
  /** How long start() waits for QEMU's QMP socket. Default 15000 ms. */
  startTimeoutMs?: number;
  /** Run QEMU unjailed (vmm/jail-policy.ts; not root and without it: VMM_JAIL_UNAVAILABLE). Default $KILN_INSECURE_NO_JAIL. */
  insecureNoJail?: boolean;
  /** kilnd's uid as the jail decision sees it (tests). Default process.getuid(). */
  uid?: number;
}

export { buildQemuArgs, layoutFingerprint, QEMU_SANDBOX, vmMarker } from './qemu-args.js';
export { findQemuVmms };

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
  /** Jailed, unjailed because the operator said so, or refusing to start VMs. */
  readonly jailDecision: JailDecision;

  constructor(opts: QemuDriverOptions = {}) {
    this.jailDecision = decideJail({ uid: opts.uid ?? process.getuid?.(), insecureNoJail: opts.insecureNoJail ?? insecureNoJailFromEnv() });
    this.jail = this.jailDecision.mode === 'jailed' ? { identity: ensureVmmIdentity(), cgroups: detectCgroups() } : null;
    this.accel = chooseAccel(opts.accel ?? 'auto');
    this.binary = opts.binary ?? 'qemu-system-x86_64';
    this.tbSize = opts.tcgTbSizeMiB ?? DEFAULT_TCG_TB_SIZE_MIB;
    this.startTimeoutMs = opts.startTimeoutMs ?? 15_000;
    // A snapshot restores only into the same QEMU with the same device set: the version carries
    // both, and it is part of every template's key (a changed device list invalidates templates).
    this.version = `${qemuVersion(this.binary)}+${layoutFingerprint(this.accel.accel, this.tbSize)}`;
  }

  capabilities(): DriverCapabilities {
    return { name: this.name, version: this.version, accel: this.accel.accel, accelReason: this.accel.reason, snapshot: true, restore: true, pause: true, jail: this.jailDecision.mode, jailReason: this.jailDecision.reason };
  }

  async start(spec: VmSpec): Promise<VmHandle> {
    if (this.jailDecision.mode === 'refused') throw jailRefused(this.jailDecision);
    const paths = vmPaths(spec.runDir);
    const args = buildQemuArgs(spec, this.accel.accel, { tcgTbSizeMiB: this.tbSize, tscKhz: hostTscKhz() });
    // The only directory QEMU may write (its sockets); vmm.log and the rest stay root's.
    const vmmDir = runDirLayout(spec.runDir).vmmDir;
    prepareVmmDir(vmmDir, this.jail?.identity ?? null);
    const jail = this.jail ? prepareJail(spec, { accel: this.accel.accel, tbSizeMiB: this.tbSize, vmmDir, ...this.jail }) : null;
    const logFd = openVmmLog(paths.vmmLog);
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
          // Its sockets exist (QMP's is created last): QEMU may create nothing more there.
          if (jail) sealVmmDir(vmmDir);
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

  async attachDisk(vm: VmHandle, disk: HotDisk): Promise<void> {
    await hotplugDisk(vm, disk, this.jail?.identity ?? null);
  }

  async pause(vm: VmHandle): Promise<void> {
    await this.qmp(vm, (q) => q.execute('stop'));
  }

  async resume(vm: VmHandle): Promise<void> {
    await this.qmp(vm, (q) => q.execute('cont'));
  }

  async snapshot(vm: VmHandle, opts: { stateFile: string; ignoreShared: boolean; timeoutMs?: number }): Promise<{ durationMs: number; bytes: number }> {
    const t0 = performance.now();
    // QEMU streams its state to a socket kilnd made in the VMM's sealed directory and kilnd
    // writes the file (vmm/migrate-out.ts). Sealing again covers a VM adopted from before vmm/.
    if (this.jail) sealVmmDir(dirname(vm.paths.qmpSocket));
    const rx = await receiveState(migrateSocketIn(dirname(vm.paths.qmpSocket)), opts.stateFile);
    try {
      await this.qmp(vm, async (q) => {
        await q.execute('stop');
        await q.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: opts.ignoreShared }] });
        await q.execute('migrate', { uri: rx.uri });
        await waitMigration(q, opts.timeoutMs ?? 120_000, 'snapshot');
      });
      const bytes = await rx.done;
      return { durationMs: Math.round(performance.now() - t0), bytes };
    } finally {
      rx.close();
    }
  }

  async flattenDisk(src: { path: string; format: 'raw' | 'qcow2' }, out: string, templatesRoot: string): Promise<void> {
    await flattenDisk({ src, out, templatesRoot, identity: this.jail?.identity ?? null });
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



function tail(path: string, bytes = 2000): string {
  try {
    const s = readFileSync(path, 'utf8');
    return s.slice(-bytes).trim() || '(no output)';
  } catch {
    return '(no log)';
  }
}
