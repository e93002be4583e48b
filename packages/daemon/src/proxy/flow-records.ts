/**
 * Proxied connections in the sandbox's flow records (`kiln network flows`, table net_flows):
 * one accepted row per exposed port, source `kiln-proxy`, destination 127.0.0.1:<port> (the
 * connection the agent opens inside the guest), with the bytes each way since kilnd started
 * (rows keep the highest count seen, as nft-read flows do). Packets count connections.
 */
import type Database from 'better-sqlite3';
import { FlowStore } from '../network/flow-store.js';

export const PROXY_FLOW_SOURCE = 'kiln-proxy';

export class ProxyFlows {
  private readonly store: FlowStore;
  private readonly totals = new Map<string, { conns: number; bytesIn: number; bytesOut: number }>();

  constructor(db: Database.Database) {
    this.store = new FlowStore(db);
  }

  /** Adds one finished (or progressing) connection's bytes. */
  record(sandboxId: string, port: number, bytesIn: number, bytesOut: number, newConnection: boolean): void {
    const key = `${sandboxId}:${port}`;
    const t = this.totals.get(key) ?? { conns: 0, bytesIn: 0, bytesOut: 0 };
    t.conns += newConnection ? 1 : 0;
    t.bytesIn += bytesIn;
    t.bytesOut += bytesOut;
    this.totals.set(key, t);
    const base = { verdict: 'accept' as const, reason: null, protocol: 'tcp', src: PROXY_FLOW_SOURCE, srcPort: null, dst: '127.0.0.1', dstPort: port, lastSeenMs: Date.now(), packets: t.conns };
    this.store.merge(sandboxId, [
      { ...base, dir: 'in', bytes: t.bytesIn },
      { ...base, dir: 'out', bytes: t.bytesOut },
    ]);
  }

  forget(sandboxId: string): void {
    for (const k of this.totals.keys()) if (k.startsWith(`${sandboxId}:`)) this.totals.delete(k);
  }
}
