/**
 * Idle timeouts: a sandbox with `idleTimeoutMs` > 0 is destroyed when no exec or file call has
 * reached it for that long. The idle clock starts when the sandbox is ready (or claimed) and is
 * reset by every call that asks the manager for the guest's agent (exec, file transfer, stat,
 * list, mkdir, remove); it counts from the start of the last such call.
 */
import type { SandboxRecord } from '../sandbox/types.js';

export interface IdleHost {
  records(): SandboxRecord[];
  lastActivityAt(id: string): number | null;
  expireIdle(id: string, idleMs: number): Promise<void>;
}

/** Sandboxes whose idle timeout has passed at `now`. */
export function idleExpired(records: readonly SandboxRecord[], lastActivityAt: (id: string) => number | null, now: number): Array<{ id: string; idleMs: number }> {
  const out: Array<{ id: string; idleMs: number }> = [];
  for (const r of records) {
    const limit = r.spec.idleTimeoutMs ?? 0;
    if (r.state !== 'running' || r.pool !== null || limit <= 0) continue;
    const since = Math.max(lastActivityAt(r.id) ?? 0, r.readyAt ?? r.createdAt, r.createdAt);
    if (now - since >= limit) out.push({ id: r.id, idleMs: now - since });
  }
  return out;
}

export async function reapIdle(h: IdleHost, now = Date.now()): Promise<string[]> {
  const expired = idleExpired(h.records(), (id) => h.lastActivityAt(id), now);
  for (const e of expired) await h.expireIdle(e.id, e.idleMs);
  return expired.map((e) => e.id);
}
