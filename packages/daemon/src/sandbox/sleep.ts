/**
 * Idle sleep and wake on traffic (issue 13): the operations behind lifecycle/auto-pause.ts's
 * timers and SandboxManager.wake / hold.
 *
 * - autoPause: under the sandbox's exclusive lock (taken only when nothing holds or waits for
 *   it), idleness is checked again, the VM is paused and its expiry timer disarmed (the timeout
 *   clock does not run while auto-paused: sandbox/usage.ts).
 * - wake: a sandbox that auto-pause paused is resumed under the exclusive lock; concurrent
 *   wakes share one resume, and a wake that arrives while an auto-pause runs waits for it and
 *   then resumes. The deadline moves by the time paused, the guest's clock is set again (as a
 *   resume does). A sandbox the user paused is not woken: the caller gets today's state error.
 * - hold: a guest call in progress (an exec, an attached terminal, followed output, a proxied
 *   connection) keeps the sandbox awake; its end counts as activity.
 */
import { autoPauseDue } from '../lifecycle/auto-pause.js';
import type { Release } from './op-lock.js';
import type { SandboxRuntime } from './runtime.js';
import type { SandboxRecord } from './types.js';

/** Resumes a paused VM: its deadline moves by the auto-paused time, its guest clock is set again. */
export async function resumeVm(rt: SandboxRuntime, rec: SandboxRecord & { vm: NonNullable<SandboxRecord['vm']> }): Promise<void> {
  const auto = rec.pausedBy === 'auto';
  const pausedAt = rec.pausedAt ?? null;
  await rt.driver.resume(rec.vm);
  if (auto && rec.expiresAt !== null && pausedAt !== null) rec.expiresAt += Math.max(0, Date.now() - pausedAt);
  rt.setState(rec, 'running');
  if (auto) rt.expiry.arm(rec.id, rec.expiresAt);
  await rt.live.get(rec.id)?.agent?.configure({ timeEpochMs: Date.now() });
}

/** Pauses an idle sandbox; false when it is no longer idle (or not running) once its lock is held. */
export function autoPause(rt: SandboxRuntime, id: string): Promise<boolean> {
  const live = rt.live.get(id);
  if (!live || live.destroying || rt.closed) return Promise.resolve(false);
  if (live.autoPausing || live.waking) return Promise.resolve(false);
  const lock = rt.locks.of(id);
  // Taken only when free: an auto-pause never queues behind a guest call (nor makes new ones wait).
  if (!lock.idle || (rt.holds.get(id) ?? 0) > 0) return Promise.resolve(false);
  const run = lock.runExclusive(async () => {
    const rec = rt.store.get(id);
    if (!rec || rec.state !== 'running' || !rec.vm || live.destroying || (rt.holds.get(id) ?? 0) > 0) return false;
    const due = autoPauseDue(rec, rt.activity.get(id) ?? null);
    if (due === null || Date.now() < due) return false;
    await rt.driver.pause(rec.vm);
    rt.expiry.clear(id);
    rt.setState(rec, 'paused', { pausedBy: 'auto' });
    const idleMs = Date.now() - (due - (rec.spec.autoPauseMs ?? 0));
    rt.store.addEvent(id, 'auto-paused', { idleMs, afterMs: rec.spec.autoPauseMs });
    rt.log(id).info({ idleMs }, 'auto-paused');
    rt.o.observer?.autoPaused?.(id);
    return true;
  });
  live.autoPausing = run;
  void run.finally(() => {
    if (live.autoPausing === run) live.autoPausing = null;
  }).catch(() => undefined);
  return run;
}

/** Resolves once the sandbox can serve guest calls (resuming it if auto-pause paused it). */
export async function wake(rt: SandboxRuntime, id: string): Promise<SandboxRecord> {
  let rec = rt.get(id);
  const live = rt.live.get(id);
  if (!live) return rec;
  rt.activity.set(id, Date.now());
  if (live.autoPausing) {
    await live.autoPausing.catch(() => false);
    rec = rt.get(id);
  }
  if (rec.state !== 'paused' || rec.pausedBy !== 'auto') return rec;
  if (live.waking) return live.waking;
  const t0 = Date.now();
  const run = rt.locks.of(id).runExclusive(async () => {
    const cur = rt.get(id);
    if (cur.state !== 'paused' || cur.pausedBy !== 'auto' || !cur.vm || live.destroying) return cur;
    const pausedMs = Date.now() - (cur.pausedAt ?? Date.now());
    await resumeVm(rt, cur as SandboxRecord & { vm: NonNullable<SandboxRecord['vm']> });
    const wakeMs = Date.now() - t0;
    rt.store.addEvent(id, 'woke', { pausedMs, wakeMs });
    rt.log(id).info({ pausedMs, wakeMs }, 'woke');
    rt.o.observer?.woke?.(id, wakeMs);
    return cur;
  });
  live.waking = run;
  try {
    return await run;
  } finally {
    if (live.waking === run) live.waking = null;
  }
}

/** Keeps the sandbox awake until the returned release is called (which counts as activity). */
export function hold(rt: SandboxRuntime, id: string): Release {
  if (!rt.live.has(id)) return () => undefined;
  rt.holds.set(id, (rt.holds.get(id) ?? 0) + 1);
  rt.activity.set(id, Date.now());
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const n = rt.holds.get(id);
    if (n === undefined) return;
    if (n <= 1) rt.holds.delete(id);
    else rt.holds.set(id, n - 1);
    if (rt.live.has(id)) rt.activity.set(id, Date.now());
  };
}
