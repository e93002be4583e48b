/**
 * E2B's `lifecycle.onTimeout: 'pause'` (create's `autoPause: true`): at its timeout the sandbox
 * is paused instead of destroyed. kiln's own timeout destroys, so such a sandbox is created with
 * none, and this keeps its end (`end_at` in store.ts, so it survives a kilnd restart) and a
 * timer that pauses it. Paused, it keeps everything until it is killed or resumed (connect, or
 * traffic when `autoResume` is on: dispatch.ts); a resume arms the timer again.
 */
import type { Logger } from 'pino';
import type { SandboxManager } from '../sandbox/manager.js';
import type { E2bStore } from './store.js';

/** setTimeout's largest delay; a later end is reached in steps. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export class PauseOnTimeout {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly manager: SandboxManager,
    private readonly store: E2bStore,
    private readonly log: Logger,
  ) {}

  /** Arms the timers of every live pause-on-timeout sandbox (at start). */
  restore(): void {
    const live = new Set(this.manager.list().map((r) => r.id));
    for (const row of this.store.armed()) if (live.has(row.sandboxId) && row.endAt != null) this.arm(row.sandboxId, row.endAt);
  }

  /** Pauses the sandbox at `endAt` (ms since the epoch). */
  arm(id: string, endAt: number): void {
    this.clear(id);
    this.store.setEndAt(id, endAt);
    const delay = Math.min(Math.max(0, endAt - Date.now()), MAX_DELAY_MS);
    const t = setTimeout(() => {
      this.timers.delete(id);
      if (Date.now() < endAt) return this.arm(id, endAt);
      void this.fire(id);
    }, delay);
    t.unref();
    this.timers.set(id, t);
  }

  /** Stops the timer (a pause, a kill); `forget` also drops the stored end. */
  clear(id: string, o: { forget?: boolean } = {}): void {
    const t = this.timers.get(id);
    if (t) clearTimeout(t);
    this.timers.delete(id);
    if (o.forget) this.store.setEndAt(id, null);
  }

  /** lifecycle.autoResume: traffic resumes a sandbox this paused, with its creation timeout again. */
  async resumeOnTraffic(id: string): Promise<void> {
    const row = this.store.get(id);
    if (!row?.autoResume) return;
    await this.manager.resume(id);
    if ((row.timeoutS ?? 0) > 0) this.arm(id, Date.now() + (row.timeoutS as number) * 1000);
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private async fire(id: string): Promise<void> {
    try {
      const rec = this.manager.list().find((r) => r.id === id);
      if (rec?.state === 'running') await this.manager.pause(id);
    } catch (err) {
      this.log.warn({ err, sandboxId: id }, 'E2B pause at timeout failed');
    }
  }
}
