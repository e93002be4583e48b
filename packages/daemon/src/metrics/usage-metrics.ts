/**
 * Usage metrics (issue 13): per sandbox, seconds running and seconds paused (sandbox/usage.ts),
 * and, for all sandboxes, auto-pauses, wakes and how long a wake took.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { SandboxRecord } from '../sandbox/types.js';
import { usageOf } from '../sandbox/usage.js';

export interface UsageMetrics {
  autoPaused(): void;
  woke(wakeMs: number): void;
}

export function registerUsageMetrics(registry: Registry, sandboxes: () => SandboxRecord[]): UsageMetrics {
  const registers = [registry];
  const perSandbox = (name: string, help: string, pick: (u: ReturnType<typeof usageOf>) => number) =>
    new Counter({
      name,
      help,
      labelNames: ['sandbox'],
      registers,
      collect() {
        this.reset();
        const now = Date.now();
        for (const r of sandboxes()) if (r.pool === null && r.readyAt !== null) this.inc({ sandbox: r.id }, pick(usageOf(r, now)));
      },
    });
  perSandbox('kiln_sandbox_running_seconds_total', 'Seconds the sandbox has been running since it was ready (paused time excluded)', (u) => u.runningSeconds);
  perSandbox('kiln_sandbox_paused_seconds_total', 'Seconds the sandbox has spent paused (by the user or by auto-pause)', (u) => u.pausedSeconds);
  const autoPauses = new Counter({ name: 'kiln_sandbox_auto_pauses_total', help: 'Sandboxes paused by auto-pause after idling', registers });
  const wakes = new Counter({ name: 'kiln_sandbox_wakes_total', help: 'Auto-paused sandboxes woken by a guest call or proxied traffic', registers });
  const wakeSeconds = new Histogram({
    name: 'kiln_sandbox_wake_duration_seconds',
    help: 'Time to wake an auto-paused sandbox (resume and guest clock set)',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers,
  });
  return {
    autoPaused: () => autoPauses.inc(),
    woke: (wakeMs) => {
      wakes.inc();
      wakeSeconds.observe(wakeMs / 1000);
    },
  };
}
