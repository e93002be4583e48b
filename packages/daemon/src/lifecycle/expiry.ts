/**
 * Sandbox timeouts: one timer per sandbox with a deadline (`expiresAt`), which calls `onExpire`
 * when it passes. Re-arming replaces the timer; timers never keep kilnd alive.
 */

/** setTimeout's longest delay (about 24.8 days); a later deadline is re-armed when this fires. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export class ExpiryTimers {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly onExpire: (id: string, expiresAt: number) => void) {}

  /** Arms (or re-arms) `id` for `expiresAt` (ms since the epoch); null disarms it. */
  arm(id: string, expiresAt: number | null): void {
    this.clear(id);
    if (expiresAt === null) return;
    const delay = Math.max(0, expiresAt - Date.now());
    const timer = setTimeout(() => {
      this.timers.delete(id);
      if (delay > MAX_DELAY_MS) this.arm(id, expiresAt);
      else this.onExpire(id, expiresAt);
    }, Math.min(delay, MAX_DELAY_MS));
    timer.unref();
    this.timers.set(id, timer);
  }

  clear(id: string): void {
    const t = this.timers.get(id);
    if (t) clearTimeout(t);
    this.timers.delete(id);
  }

  clearAll(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
