/**
 * Address leases, persisted in kilnd's SQLite file (table net_leases).
 *
 * How addresses are handed out: a lease binds one sandbox id to one slot of the subnet (see
 * address-plan.ts); allocate() takes the lowest free slot inside one SQLite transaction, and
 * UNIQUE(subnet, slot) + UNIQUE(sandbox_id) make it impossible for two live sandboxes to hold
 * the same block, even across daemon restarts. The lease records the subnet it came from, so a
 * sandbox keeps its addresses if the configured subnet changes while it runs.
 * How they are freed: release() deletes the row, only after the sandbox's host resources
 * (netns, veth, TAP, tables, resolver) are gone; at start-up, leases whose sandbox no longer
 * exists are released (reconcile). A slot is never handed out twice while in use.
 */
import type Database from 'better-sqlite3';
import { KilnError } from '../errors.js';
import { addressesFor, slotCount, type SandboxAddresses } from './address-plan.js';
import { type Cidr, formatCidr, parseCidr } from './ipv4.js';
import type { NetworkPolicy } from './policy.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS net_leases (
  sandbox_id TEXT PRIMARY KEY,
  subnet TEXT NOT NULL,
  slot INTEGER NOT NULL,
  policy TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (subnet, slot)
);`;

export interface Lease {
  sandboxId: string;
  subnet: string;
  slot: number;
  addresses: SandboxAddresses;
  /** The policy in force (changed live by setPolicy). */
  policy: NetworkPolicy;
  createdAt: number;
}

interface Row {
  sandbox_id: string;
  subnet: string;
  slot: number;
  policy: string;
  created_at: number;
}

function fromRow(r: Row): Lease {
  const subnet = parseCidr(r.subnet) as Cidr;
  return { sandboxId: r.sandbox_id, subnet: r.subnet, slot: r.slot, addresses: addressesFor(subnet, r.slot), policy: JSON.parse(r.policy) as NetworkPolicy, createdAt: r.created_at };
}

export class LeaseStore {
  constructor(private readonly db: Database.Database) {
    db.exec(SCHEMA);
  }

  /**
   * The sandbox's lease, creating one on the lowest free slot of `subnet`. `busy`: slots whose
   * addresses something else on the host already uses (skipped, e.g. another instance's leftovers).
   */
  allocate(sandboxId: string, subnet: Cidr, policy: NetworkPolicy, busy: (slot: number) => boolean = () => false): Lease {
    const subnetText = formatCidr(subnet);
    const tx = this.db.transaction((): Lease => {
      const existing = this.get(sandboxId);
      if (existing) return existing;
      const used = new Set(this.db.prepare('SELECT slot FROM net_leases WHERE subnet = ? ORDER BY slot').pluck().all(subnetText) as number[]);
      let slot = 0;
      let skipped = 0;
      for (; slot < slotCount(subnet); slot++) {
        if (used.has(slot)) continue;
        if (!busy(slot)) break;
        skipped++;
      }
      if (slot >= slotCount(subnet)) {
        const also = skipped ? `, ${skipped} held by something else on this host` : '';
        throw new KilnError('NETWORK_EXHAUSTED', `no free address block in ${subnetText} (${used.size} in use${also})`, { status: 503 });
      }
      this.db
        .prepare('INSERT INTO net_leases (sandbox_id, subnet, slot, policy, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(sandboxId, subnetText, slot, JSON.stringify(policy), Date.now());
      return this.get(sandboxId) as Lease;
    });
    return tx.immediate();
  }

  get(sandboxId: string): Lease | null {
    const r = this.db.prepare('SELECT * FROM net_leases WHERE sandbox_id = ?').get(sandboxId) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  list(): Lease[] {
    return (this.db.prepare('SELECT * FROM net_leases ORDER BY subnet, slot').all() as Row[]).map(fromRow);
  }

  setPolicy(sandboxId: string, policy: NetworkPolicy): void {
    this.db.prepare('UPDATE net_leases SET policy = ? WHERE sandbox_id = ?').run(JSON.stringify(policy), sandboxId);
  }

  release(sandboxId: string): void {
    this.db.prepare('DELETE FROM net_leases WHERE sandbox_id = ?').run(sandboxId);
  }
}
