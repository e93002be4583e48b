import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import Database from 'better-sqlite3';
import { addressesFor, macFor } from './address-plan.js';
import { type Cidr, parseCidr } from './ipv4.js';
import { LeaseStore } from './leases.js';
import { DEFAULT_POLICY } from './policy.js';

const subnet = parseCidr('10.210.0.0/16') as Cidr;

test('the address plan: one /29 per slot, gateway .1, guest .2, veth .5/.6', () => {
  assert.deepEqual(addressesFor(subnet, 0), { block: '10.210.0.0/29', gateway: '10.210.0.1', guest: '10.210.0.2', guestPrefix: 30, uplinkVeth: '10.210.0.5', sandboxVeth: '10.210.0.6', vethPrefix: 30 });
  assert.equal(addressesFor(subnet, 33).guest, '10.210.1.10');
  assert.throws(() => addressesFor(subnet, 8192), RangeError);
  assert.equal(macFor('0123456789ab'), '02:6b:45:67:89:ab');
});

test('leases: lowest free slot, one per sandbox, reused only after release, persisted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-leases-'));
  try {
    const path = join(dir, 'db');
    let db = new Database(path);
    let leases = new LeaseStore(db);
    const a = leases.allocate('sb-00000000000a', subnet, DEFAULT_POLICY);
    const b = leases.allocate('sb-00000000000b', subnet, DEFAULT_POLICY);
    assert.deepEqual([a.slot, b.slot], [0, 1]);
    assert.equal(leases.allocate('sb-00000000000a', subnet, DEFAULT_POLICY).slot, 0, 'idempotent per sandbox');
    leases.release('sb-00000000000a');
    db.close();
    db = new Database(path);
    leases = new LeaseStore(db);
    assert.equal(leases.get('sb-00000000000b')?.addresses.guest, '10.210.0.10');
    assert.equal(leases.allocate('sb-00000000000c', subnet, DEFAULT_POLICY).slot, 0, 'the freed slot comes back');
    assert.equal(leases.allocate('sb-00000000000d', subnet, DEFAULT_POLICY).slot, 2);
    leases.setPolicy('sb-00000000000d', { ...DEFAULT_POLICY, preset: 'none' });
    assert.equal(leases.get('sb-00000000000d')?.policy.preset, 'none');
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('leases: a full subnet is a coded error', () => {
  const db = new Database(':memory:');
  const leases = new LeaseStore(db);
  const tiny = parseCidr('10.210.0.0/28') as Cidr;
  leases.allocate('sb-000000000001', tiny, DEFAULT_POLICY);
  leases.allocate('sb-000000000002', tiny, DEFAULT_POLICY);
  assert.throws(() => leases.allocate('sb-000000000003', tiny, DEFAULT_POLICY), { code: 'NETWORK_EXHAUSTED' });
  db.close();
});

test('leases: a block something else on the host uses is skipped, not handed out', () => {
  const db = new Database(':memory:');
  const leases = new LeaseStore(db);
  const busy = (slot: number) => slot === 0 || slot === 2;
  assert.equal(leases.allocate('sb-000000000001', subnet, DEFAULT_POLICY, busy).slot, 1);
  assert.equal(leases.allocate('sb-000000000002', subnet, DEFAULT_POLICY, busy).slot, 3);
  const tiny = parseCidr('10.210.0.0/28') as Cidr;
  const db2 = new Database(':memory:');
  assert.throws(() => new LeaseStore(db2).allocate('sb-000000000003', tiny, DEFAULT_POLICY, () => true), /2 held by something else on this host/);
  db.close();
  db2.close();
});
