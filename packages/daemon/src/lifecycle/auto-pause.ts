/**
 * Auto-pause (issue 13): a sandbox with `spec.autoPauseMs` > 0 is paused (its VM's vCPUs stop;
 * memory, processes and files are kept) once nothing has used it for that long, and the next
 * guest call wakes it (SandboxManager.wake).
 *
 * Activity is what resets the idle clock: an exec or file call starting (useAgent), process and
 * terminal I/O and proxied traffic (SandboxManager.touch), a wake, a resume. The clock counts
 * from the latest of the last activity and the moment the sandbox became ready.
 *
 * A sandbox is never paused while it is busy: a guest call holds it (an exec in progress, an
 * attached terminal or followed output: SandboxManager.hold) or an operation runs on or waits
 * for its lock. A busy sandbox is looked at again `busyRetryMs` later, and a hold ending
 * counts as activity, so the idle time is counted from the end of the last call.
 *
 * One timer per sandbox, armed for the moment it would be due: activity does not touch the
 * timer (a terminal's bytes are cheap); when the timer fires it recomputes the due time from the
 * latest activity and sleeps again if activity moved it.
 */
import type { SandboxRecord } from '../sandbox/types.js';

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const REAL_CLOCK: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface AutoPauseHost {
  record(id: string): SandboxRecord | null;
  lastActivityAt(id: string): number | null;
  /** True while a guest call holds the sandbox or an operation holds or waits for its lock. */
  busy(id: string): boolean;
  /** Pauses the sandbox; re-checks idleness under its lock. False when it did not pause. */
  pause(id: string, idleMs: number): Promise<boolean>;
  /** A pause that failed (logged; retried after another idle period). */
  error(id: string, err: unknown): void;
}

/** setTimeout's longest delay (about 24.8 days). */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** When `rec` is due to auto-pause (ms since the epoch), or null if it is not to be paused. */
export function autoPauseDue(rec: SandboxRecord, lastActivityAt: number | null): number | null {
  const after = rec.spec.autoPauseMs ?? 0;
  if (after <= 0 || rec.state !== 'running' || rec.pool !== null) return null;
  return Math.max(lastActivityAt ?? 0, rec.readyAt ?? rec.createdAt, rec.createdAt) + after;
}

export class AutoPauseTimers {
  private readonly timers = new Map<string, unknown>();

  constructor(
    private readonly h: AutoPauseHost,
    private readonly clock: Clock = REAL_CLOCK,
    private readonly busyRetryMs = 1000,
  ) {}

  /** (Re-)arms the sandbox's timer from its record; does nothing for a sandbox not to be auto-paused. */
  arm(id: string): void {
    this.clear(id);
    const rec = this.h.record(id);
    const due = rec ? autoPauseDue(rec, this.h.lastActivityAt(id)) : null;
    if (due !== null) this.schedule(id, due - this.clock.now());
  }

  clear(id: string): void {
    const t = this.timers.get(id);
    if (t !== undefined) this.clock.clearTimeout(t);
    this.timers.delete(id);
  }

  clearAll(): void {
    for (const id of [...this.timers.keys()]) this.clear(id);
  }

  /** True while a timer is armed for `id` (tests). */
  armed(id: string): boolean {
    return this.timers.has(id);
  }

  private schedule(id: string, delayMs: number): void {
    this.clear(id);
    this.timers.set(
      id,
      this.clock.setTimeout(() => void this.fire(id), Math.min(Math.max(0, delayMs), MAX_DELAY_MS)),
    );
  }

  private async fire(id: string): Promise<void> {
    this.timers.delete(id);
    const rec = this.h.record(id);
    if (!rec) return;
    const due = autoPauseDue(rec, this.h.lastActivityAt(id));
    if (due === null) return;
    const now = this.clock.now();
    if (now < due) return this.schedule(id, due - now);
    const after = rec.spec.autoPauseMs ?? 0;
    if (this.h.busy(id)) return this.schedule(id, Math.min(after, this.busyRetryMs));
    let paused = false;
    try {
      paused = await this.h.pause(id, now - (due - after));
    } catch (err) {
      this.h.error(id, err);
      if (!this.timers.has(id)) this.schedule(id, after);
      return;
    }
    if (paused || this.timers.has(id)) return;
    // Not paused (activity came, a call holds it now, an operation ran): look again when due,
    // and not sooner than busyRetryMs.
    const cur = this.h.record(id);
    const next = cur ? autoPauseDue(cur, this.h.lastActivityAt(id)) : null;
    if (next !== null) this.schedule(id, Math.max(next - this.clock.now(), Math.min(after, this.busyRetryMs)));
  }
}
