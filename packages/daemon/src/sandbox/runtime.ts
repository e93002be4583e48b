/**
 * What the parts of the sandbox manager share: its options, what kilnd holds in memory for each
 * sandbox (agent channel, creation or destruction in progress, operation lock, expiry timer,
 * last activity), and the few primitives that change a sandbox's row or reclaim its resources.
 */
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Logger } from 'pino';
import { sandboxNotFound } from '../errors.js';
import type { CapacityLimits } from '../lifecycle/capacity.js';
import { AutoPauseTimers } from '../lifecycle/auto-pause.js';
import { ExpiryTimers } from '../lifecycle/expiry.js';
import type { NetworkService } from '../network/service.js';
import type { Store } from '../store/store.js';
import type { VmmDriver } from '../vmm/driver.js';
import type { VolumeService } from '../volume/service.js';
import type { RegistryService } from '../registry/service.js';
import type { TemplateSource } from './create-steps.js';
import type { ConnectAgent, GuestAgent, GuestImage } from './guest-agent.js';
import { isSandboxId } from './ids.js';
import type { ManagerObserver } from './observer.js';
import { OpLocks } from './op-lock.js';
import { runDirLayout, runDirOf, sandboxesDir, type RunDirLayout } from './run-dir.js';
import { assertTransition } from './state-machine.js';
import type { SandboxRecord, SandboxSpec, SandboxState } from './types.js';

export interface ManagerOptions {
  stateDir: string;
  store: Store;
  driver: VmmDriver;
  logger: Logger;
  resolveImage(): Promise<GuestImage | null>;
  createScratchDisk(path: string, sizeGiB: number): Promise<void>;
  connectAgent: ConnectAgent;
  /** Warm pool of the default shape: this many restored, unassigned sandboxes. Default 0. */
  poolSize?: number;
  /** Template snapshots to restore from; null = always cold boot. */
  templates?: TemplateSource | null;
  /** Sandbox networking (netns, TAP, policy); null/absent = sandboxes get no network. */
  network?: NetworkService | null;
  /** Kernel boot to agent answer, per attempt (a hung boot is retried once). Default 90 s. */
  bootTimeoutMs?: number;
  /** Agent answer to dockerd answering /_ping. Default 180 s. */
  dockerReadyTimeoutMs?: number;
  /**
   * A sandbox restored from a boot template is handed out before its dockerd (verified ready
   * when the template was snapshotted) answers again; this long it then has. Default 30 s.
   */
  restoredDockerCheckMs?: number;
  /** Grace for QEMU to quit before SIGKILL on destroy. Default 3 s. */
  stopTimeoutMs?: number;
  defaults?: Partial<SandboxSpec>;
  /** Told of state changes, watched VMs and released sandboxes (audit, logs, metrics). */
  observer?: ManagerObserver;
  /** Admission limits (lifecycle/capacity.ts); absent = no limits. */
  capacity?: CapacityLimits;
  /** Persistent volumes; absent = a create with volumes is refused. */
  volumes?: VolumeService | null;
  /** The private registry; absent = sandboxes do not reach one. */
  registry?: RegistryService | null;
}

/** A sandbox's state that lives in kilnd's memory only. */
export interface Live {
  agent: GuestAgent | null;
  abort: AbortController;
  creating: Promise<void> | null;
  destroying: Promise<void> | null;
  /** An auto-pause in progress (sandbox/sleep.ts). */
  autoPausing?: Promise<boolean> | null;
  /** A wake in progress: concurrent wakes share it (sandbox/sleep.ts). */
  waking?: Promise<SandboxRecord> | null;
}

export class SandboxRuntime {
  readonly live = new Map<string, Live>();
  /** Sandbox id → time of the last guest activity (idle timeouts, lifecycle/idle.ts; auto-pause). */
  readonly activity = new Map<string, number>();
  /** Sandbox id → guest calls in progress that keep it awake (SandboxManager.hold). */
  readonly holds = new Map<string, number>();
  readonly locks = new OpLocks();
  readonly expiry: ExpiryTimers;
  readonly autoPause: AutoPauseTimers;
  readonly sandboxesDir: string;
  closed = false;

  constructor(
    readonly o: ManagerOptions,
    onExpire: (id: string, expiresAt: number) => void,
    onAutoPause: (id: string, idleMs: number) => Promise<boolean> = async () => false,
  ) {
    this.sandboxesDir = sandboxesDir(o.stateDir);
    this.expiry = new ExpiryTimers(onExpire);
    this.autoPause = new AutoPauseTimers({
      record: (id) => (this.live.has(id) ? this.o.store.get(id) : null),
      lastActivityAt: (id) => this.activity.get(id) ?? null,
      busy: (id) => (this.holds.get(id) ?? 0) > 0 || !this.locks.of(id).idle || !!this.live.get(id)?.destroying,
      pause: onAutoPause,
      error: (id, err) => this.log(id).error({ err }, 'auto-pause failed'),
    });
  }

  get store(): Store {
    return this.o.store;
  }

  get driver(): VmmDriver {
    return this.o.driver;
  }

  get network(): NetworkService | null {
    return this.o.network ?? null;
  }

  get(id: string): SandboxRecord {
    const rec = isSandboxId(id) ? this.o.store.get(id) : null;
    if (!rec) throw sandboxNotFound(id);
    return rec;
  }

  /** The sandbox's live state, made empty if kilnd holds none (a row of an earlier kilnd). */
  liveOf(id: string): Live {
    return this.live.get(id) ?? this.newLive(id);
  }

  newLive(id: string): Live {
    const live: Live = { agent: null, abort: new AbortController(), creating: null, destroying: null };
    this.live.set(id, live);
    return live;
  }

  /** Forgets what kilnd held in memory for a sandbox whose row is gone. */
  forget(id: string): void {
    this.live.delete(id);
    this.locks.drop(id);
    this.expiry.clear(id);
    this.autoPause.clear(id);
    this.activity.delete(id);
    this.holds.delete(id);
  }

  runDir(id: string): RunDirLayout {
    return runDirLayout(runDirOf(this.sandboxesDir, id));
  }

  log(id: string): Logger {
    return this.o.logger.child({ sandboxId: id });
  }

  setState(rec: SandboxRecord, state: SandboxState, extra: Partial<SandboxRecord> = {}): void {
    assertTransition(rec.id, rec.state, state);
    const from = rec.state;
    const now = Date.now();
    Object.assign(rec, extra, { state, updatedAt: now });
    // Pause accounting (sandbox/usage.ts): a pause starts and ends here, whoever asked for it.
    if (state === 'paused' && from !== 'paused') Object.assign(rec, { pausedAt: now, pausedBy: rec.pausedBy ?? 'user' });
    if (from === 'paused' && state !== 'paused') {
      Object.assign(rec, { pausedMs: (rec.pausedMs ?? 0) + Math.max(0, now - (rec.pausedAt ?? now)), pausedAt: null, pausedBy: null });
    }
    this.o.store.update(rec);
    this.o.store.addEvent(rec.id, 'state', { state, ...(state === 'paused' ? { pausedBy: rec.pausedBy } : {}), ...(rec.error && state === 'failed' ? { error: rec.error } : {}) });
    this.log(rec.id).info({ state }, 'state');
    this.o.observer?.transition?.(rec, from, state);
    if (state === 'running') {
      this.activity.set(rec.id, now);
      this.autoPause.arm(rec.id);
    } else {
      this.autoPause.clear(rec.id);
    }
  }

  consoleTail(id: string, bytes = 600): string {
    if (this.o.observer?.consoleTail) return this.o.observer.consoleTail(id, bytes);
    try {
      return readFileSync(this.runDir(id).consoleLog, 'utf8').slice(-bytes);
    } catch {
      return '';
    }
  }

  /** Removes what a sandbox holds on the host: its network and run directory. */
  async releaseResources(id: string): Promise<void> {
    this.activity.delete(id);
    this.autoPause.clear(id);
    this.o.observer?.released?.(id);
    if (this.o.registry) await this.o.registry.detach(id, this.runDir(id).dir);
    await this.o.network?.teardown(id);
    this.o.volumes?.release(id);
    await rm(this.runDir(id).dir, { recursive: true, force: true });
  }
}
