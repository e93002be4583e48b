/**
 * Test doubles for fast unit tests of the manager and the API: a VMM driver that "runs" VMs
 * as records in memory and a guest agent that answers without a guest. They prove the state
 * machine and the API contract only; integration tests boot real VMs.
 */
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { runDirLayout } from '../sandbox/run-dir.js';
import type { DriverCapabilities, FoundVmm, VmExit, VmHandle, VmmDriver, VmSpec } from '../vmm/driver.js';
import { vmPaths } from '../vmm/driver.js';
import type { GuestAgent } from '../sandbox/guest-agent.js';

export class FakeDriver implements VmmDriver {
  readonly name = 'fake';
  readonly running = new Map<number, { spec: VmSpec; exit: (e: VmExit) => void; done: Promise<VmExit> }>();
  private nextPid = 100_000;
  failStart: Error | null = null;

  capabilities(): DriverCapabilities {
    return { name: 'fake', version: '0', accel: 'tcg', accelReason: 'fake', snapshot: false, restore: false, pause: false };
  }

  async start(spec: VmSpec): Promise<VmHandle> {
    if (this.failStart) throw this.failStart;
    const pid = this.nextPid++;
    let exit!: (e: VmExit) => void;
    const done = new Promise<VmExit>((r) => (exit = r));
    this.running.set(pid, { spec, exit, done });
    // Like a real driver: the VMM's directory exists for its sockets (sandbox/run-dir.ts).
    if (existsSync(spec.runDir)) mkdirSync(runDirLayout(spec.runDir).vmmDir, { recursive: true });
    return { id: spec.id, pid, startTime: 1, accel: 'tcg', paths: vmPaths(spec.runDir) };
  }

  /** Simulates the VM process dying (crash, poweroff). */
  crash(pid: number, signal = 'SIGKILL'): void {
    const vm = this.running.get(pid);
    if (!vm) return;
    this.running.delete(pid);
    vm.exit({ reason: 'killed', exitCode: null, signal });
  }

  async stop(vm: VmHandle): Promise<void> {
    await this.kill(vm);
  }

  async kill(vm: VmHandle): Promise<void> {
    const r = this.running.get(vm.pid);
    if (!r) return;
    this.running.delete(vm.pid);
    r.exit({ reason: 'killed', exitCode: null, signal: 'SIGKILL' });
  }

  wait(vm: VmHandle): Promise<VmExit> {
    return this.running.get(vm.pid)?.done ?? Promise.resolve({ reason: 'vanished', exitCode: null, signal: null });
  }

  isAlive(vm: VmHandle): boolean {
    return this.running.has(vm.pid);
  }

  async snapshot(): Promise<{ durationMs: number; bytes: number }> {
    return { durationMs: 0, bytes: 0 };
  }

  async restore(spec: VmSpec): Promise<VmHandle> {
    return this.start(spec);
  }

  async pause(): Promise<void> {}

  findVmms(runRoot: string): FoundVmm[] {
    return [...this.running]
      .filter(([, v]) => v.spec.runDir.startsWith(`${runRoot}/`))
      .map(([pid, v]) => ({ id: v.spec.id, pid, kill: () => (this.running.has(pid) ? (this.crash(pid), true) : false) }));
  }

  async resume(): Promise<void> {}
}

export interface FakeAgentOptions {
  dockerReadyError?: Error;
}

export function fakeAgent(opts: FakeAgentOptions = {}): GuestAgent & { closed: boolean; configured: unknown[] } {
  const ee = new EventEmitter();
  const agent = {
    closed: false,
    once: ee.once.bind(ee),
    health: async () => ({ uptimeMs: 1, loadavg: [0, 0, 0], memTotalKiB: 1, memAvailableKiB: 1, dockerReady: true }),
    dockerReady: async () => {
      if (opts.dockerReadyError) throw opts.dockerReadyError;
      return { waitedMs: 1 };
    },
    configured: [] as unknown[],
    network: async () => ({ interface: 'eth0', durationMs: 0 }),
    configure: async (args: unknown) => {
      agent.configured.push(args);
    },
    close: () => {
      if (agent.closed) return;
      agent.closed = true;
      ee.emit('close');
    },
  };
  return agent as unknown as GuestAgent & { closed: boolean; configured: unknown[] };
}

export async function fakeScratchDisk(path: string): Promise<void> {
  await writeFile(path, '');
}
