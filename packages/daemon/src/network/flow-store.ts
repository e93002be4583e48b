/**
 * Flow history, persisted in kilnd's SQLite file (table net_flows) so flows outlive their
 * 1 h idle timeout in nftables. One row per (sandbox, verdict, 5-tuple); counters are the
 * highest seen for that flow; first seen is the first time kilnd read it (its resolution is
 * the accounting poll interval) or its last packet, whichever is earlier. Deleted with the
 * sandbox.
 */
import type Database from 'better-sqlite3';
import type { FlowObservation } from './flows.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS net_flows (
  sandbox_id TEXT NOT NULL,
  verdict TEXT NOT NULL,
  protocol TEXT NOT NULL,
  src TEXT NOT NULL,
  src_port INTEGER NOT NULL,
  dst TEXT NOT NULL,
  dst_port INTEGER NOT NULL,
  reason TEXT,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  packets_out INTEGER NOT NULL DEFAULT 0,
  bytes_out INTEGER NOT NULL DEFAULT 0,
  packets_in INTEGER NOT NULL DEFAULT 0,
  bytes_in INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (sandbox_id, verdict, protocol, src, src_port, dst, dst_port)
);
CREATE INDEX IF NOT EXISTS net_flows_recent ON net_flows(sandbox_id, last_seen);
`;

export interface FlowRecord {
  verdict: 'accept' | 'drop';
  reason: string | null;
  protocol: string;
  src: string;
  srcPort: number | null;
  dst: string;
  dstPort: number | null;
  firstSeenMs: number;
  lastSeenMs: number;
  packetsOut: number;
  bytesOut: number;
  packetsIn: number;
  bytesIn: number;
}

interface Row {
  verdict: 'accept' | 'drop';
  reason: string | null;
  protocol: string;
  src: string;
  src_port: number;
  dst: string;
  dst_port: number;
  first_seen: number;
  last_seen: number;
  packets_out: number;
  bytes_out: number;
  packets_in: number;
  bytes_in: number;
}

export class FlowStore {
  private readonly upsert: Database.Statement;

  constructor(private readonly db: Database.Database) {
    db.exec(SCHEMA);
    this.upsert = db.prepare(`
      INSERT INTO net_flows (sandbox_id, verdict, protocol, src, src_port, dst, dst_port, reason, first_seen, last_seen, packets_out, bytes_out, packets_in, bytes_in)
      VALUES (@id, @verdict, @protocol, @src, @sport, @dst, @dport, @reason, @seen, @seen, @po, @bo, @pi, @bi)
      ON CONFLICT DO UPDATE SET
        first_seen = MIN(first_seen, excluded.first_seen),
        last_seen = MAX(last_seen, excluded.last_seen),
        reason = COALESCE(reason, excluded.reason),
        packets_out = MAX(packets_out, excluded.packets_out), bytes_out = MAX(bytes_out, excluded.bytes_out),
        packets_in = MAX(packets_in, excluded.packets_in), bytes_in = MAX(bytes_in, excluded.bytes_in)`);
  }

  merge(sandboxId: string, flows: readonly FlowObservation[]): void {
    const tx = this.db.transaction(() => {
      for (const f of flows) {
        const out = f.dir === 'out';
        this.upsert.run({
          id: sandboxId,
          verdict: f.verdict,
          protocol: f.protocol,
          src: f.src,
          sport: f.srcPort ?? -1,
          dst: f.dst,
          dport: f.dstPort ?? -1,
          reason: f.reason,
          seen: f.lastSeenMs,
          po: out ? f.packets : 0,
          bo: out ? f.bytes : 0,
          pi: out ? 0 : f.packets,
          bi: out ? 0 : f.bytes,
        });
      }
    });
    tx();
  }

  /** Most recent first. */
  list(sandboxId: string, opts: { limit?: number; verdict?: 'accept' | 'drop' } = {}): FlowRecord[] {
    const rows = this.db
      .prepare(`SELECT * FROM net_flows WHERE sandbox_id = ? ${opts.verdict ? 'AND verdict = ?' : ''} ORDER BY last_seen DESC, first_seen DESC LIMIT ?`)
      .all(...[sandboxId, ...(opts.verdict ? [opts.verdict] : []), opts.limit ?? 1000]) as Row[];
    return rows.map((r) => ({
      verdict: r.verdict,
      reason: r.reason,
      protocol: r.protocol,
      src: r.src,
      srcPort: r.src_port < 0 ? null : r.src_port,
      dst: r.dst,
      dstPort: r.dst_port < 0 ? null : r.dst_port,
      firstSeenMs: r.first_seen,
      lastSeenMs: r.last_seen,
      packetsOut: r.packets_out,
      bytesOut: r.bytes_out,
      packetsIn: r.packets_in,
      bytesIn: r.bytes_in,
    }));
  }

  deleteFor(sandboxId: string): void {
    this.db.prepare('DELETE FROM net_flows WHERE sandbox_id = ?').run(sandboxId);
  }
}
