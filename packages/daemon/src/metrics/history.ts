/**
 * The recent past of every sandbox's resource samples (default: the last 15 minutes), kept in
 * memory beside the latest sample so that a graph opened late still shows where it came from.
 * One compact point per sample round: ~450 points per sandbox at the default 2 s interval.
 */
/** What a point is taken from: the fields of a sampler.ts SandboxSample that graphs show. */
export interface SampleFields {
  id: string;
  at: number;
  vmm: { cpuPercent: number | null; rssBytes: number } | null;
  guest: { memUsedBytes: number; memTotalBytes: number } | null;
  net: { rxBytes: number; txBytes: number } | null;
}

export interface HistoryPoint {
  /** ms since the epoch */
  at: number;
  /** VMM CPU, % of one core (null: the first sample, no rate yet) */
  cpuPercent: number | null;
  /** VMM resident memory */
  rssBytes: number | null;
  /** guest memory in use (as last reported by the guest) */
  memUsedBytes: number | null;
  memTotalBytes: number | null;
  /** cumulative guest network bytes */
  rxBytes: number | null;
  txBytes: number | null;
}

export const HISTORY_WINDOW_MS = 15 * 60_000;

export class SampleHistory {
  private readonly points = new Map<string, HistoryPoint[]>();

  constructor(readonly windowMs = HISTORY_WINDOW_MS) {}

  add(s: SampleFields): void {
    const list = this.points.get(s.id) ?? [];
    list.push({
      at: s.at,
      cpuPercent: s.vmm?.cpuPercent ?? null,
      rssBytes: s.vmm?.rssBytes ?? null,
      memUsedBytes: s.guest?.memUsedBytes ?? null,
      memTotalBytes: s.guest?.memTotalBytes ?? null,
      rxBytes: s.net?.rxBytes ?? null,
      txBytes: s.net?.txBytes ?? null,
    });
    const oldest = s.at - this.windowMs;
    let drop = 0;
    while (drop < list.length && (list[drop] as HistoryPoint).at < oldest) drop++;
    if (drop) list.splice(0, drop);
    this.points.set(s.id, list);
  }

  /** Points of a sandbox newer than `after` (ms since the epoch), oldest first. */
  get(id: string, after = 0): HistoryPoint[] {
    return (this.points.get(id) ?? []).filter((p) => p.at > after);
  }

  forget(id: string): void {
    this.points.delete(id);
  }

  ids(): string[] {
    return [...this.points.keys()];
  }
}
