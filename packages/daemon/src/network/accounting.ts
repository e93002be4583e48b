/**
 * A sandbox's accounting, read out of its nftables: the totals (kept in memory, the latest
 * read per sandbox) and the flows (merged into SQLite by FlowStore, so history outlives sets).
 */
import type Database from 'better-sqlite3';
import { FlowStore, type FlowRecord } from './flow-store.js';
import { type NetCounters, parseAccounting } from './flows.js';
import { hostCmd } from './host-cmd.js';
import type { Lease } from './leases.js';
import { netNames } from './names.js';

export class NetAccounting {
  private readonly flowStore: FlowStore;
  private readonly counters = new Map<string, NetCounters>();

  constructor(db: Database.Database) {
    this.flowStore = new FlowStore(db);
  }

  async poll(lease: Lease, hostAddrs: string[]): Promise<NetCounters> {
    const names = netNames(lease.sandboxId);
    const json = await hostCmd('nft', ['-j', 'list', 'ruleset'], { netns: names.netns });
    const { counters, flows } = parseAccounting(json, names.table, { guest: lease.addresses.guest, gateway: lease.addresses.gateway, subnet: lease.subnet, hostAddrs });
    this.flowStore.merge(lease.sandboxId, flows);
    this.counters.set(lease.sandboxId, counters);
    return counters;
  }

  latest(sandboxId: string): NetCounters | undefined {
    return this.counters.get(sandboxId);
  }

  list(sandboxId: string, opts: { limit?: number; verdict?: 'accept' | 'drop' }): FlowRecord[] {
    return this.flowStore.list(sandboxId, opts);
  }

  forget(sandboxId: string): void {
    this.flowStore.deleteFor(sandboxId);
    this.counters.delete(sandboxId);
  }
}
