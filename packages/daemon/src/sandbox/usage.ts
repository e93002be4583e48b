/**
 * Billing-style accounting of a sandbox (issue 13): seconds running and seconds paused since it
 * became ready, and its timeout as it stands while auto-paused.
 *
 * Paused time comes from the record: `pausedMs` (pauses that ended) plus the pause in progress
 * (`pausedAt`); runtime.setState keeps them. Running time is the rest of its life since ready.
 *
 * The timeout clock does not run while a sandbox is auto-paused (like E2B, which keeps paused
 * sandboxes): its expiry timer is disarmed at the auto-pause and the deadline moves by the time
 * paused when it wakes. A sandbox the user paused keeps its timeout (it runs as before).
 */
import type { SandboxRecord } from './types.js';

const ENDED = new Set(['stopping', 'stopped', 'destroyed', 'failed']);

export interface Usage {
  runningSeconds: number;
  pausedSeconds: number;
}

export function usageOf(rec: SandboxRecord, now = Date.now()): Usage {
  if (rec.readyAt === null) return { runningSeconds: 0, pausedSeconds: 0 };
  const start = Math.max(rec.readyAt, rec.createdAt);
  const end = Math.max(start, ENDED.has(rec.state) ? rec.updatedAt : now);
  const pausedMs = (rec.pausedMs ?? 0) + (rec.pausedAt != null ? Math.max(0, end - Math.max(rec.pausedAt, start)) : 0);
  const paused = Math.min(pausedMs, end - start);
  return { runningSeconds: round3((end - start - paused) / 1000), pausedSeconds: round3(paused / 1000) };
}

/** The deadline as it stands: while auto-paused the clock is stopped, so it is `now` + what remained at the pause. */
export function effectiveExpiresAt(rec: SandboxRecord, now = Date.now()): number | null {
  if (rec.expiresAt === null) return null;
  if (rec.pausedBy === 'auto' && rec.pausedAt != null) return rec.expiresAt + Math.max(0, now - rec.pausedAt);
  return rec.expiresAt;
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;
