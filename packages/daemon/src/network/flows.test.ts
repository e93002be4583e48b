import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyDrop, parseAccounting } from './flows.js';

const ctx = { guest: '10.210.0.2', gateway: '10.210.0.1', subnet: '10.210.0.0/16', hostAddrs: ['192.0.2.2'] };

test('drop reasons follow the always-deny ranges', () => {
  const c = (dst: string, dstPort: number | null = 80, protocol = 'tcp', src = ctx.guest) => classifyDrop(ctx, { src, dst, dstPort, protocol });
  assert.equal(c('10.210.0.1'), 'host');
  assert.equal(c('192.0.2.2'), 'host');
  assert.equal(c('169.254.169.254'), 'reserved');
  assert.equal(c('10.210.0.10'), 'sandbox');
  assert.equal(c('198.51.100.53', 53, 'udp'), 'dns');
  assert.equal(c('192.168.1.1'), 'private');
  assert.equal(c('198.51.100.10', 8080), 'policy');
  assert.equal(c('10.210.0.2', 22, 'tcp', '198.51.100.10'), 'inbound');
});

test('nft JSON → totals and flows (directions merged by the 5-tuple as the guest sent it)', () => {
  const now = 1_800_000_000_000;
  const json = JSON.stringify({
    nftables: [
      { metainfo: {} },
      { counter: { family: 'inet', name: 'tx_guest', table: 'kiln_x', packets: 5, bytes: 300 } },
      { counter: { family: 'inet', name: 'rx_guest', table: 'kiln_x', packets: 4, bytes: 900 } },
      { counter: { family: 'inet', name: 'dropped', table: 'kiln_x', packets: 2, bytes: 120 } },
      { counter: { family: 'netdev', name: 'spoofed', table: 'kiln_x', packets: 3, bytes: 180 } },
      { counter: { family: 'inet', name: 'tx_guest', table: 'other', packets: 99, bytes: 99 } },
      { set: { family: 'inet', name: 'flows_out', table: 'kiln_x', elem: [{ elem: { val: { concat: ['10.210.0.2', '198.51.100.10', 'tcp', 40000, 80] }, expires: 3590, counter: { packets: 5, bytes: 300 } } }] } },
      { set: { family: 'inet', name: 'flows_in', table: 'kiln_x', elem: [{ elem: { val: { concat: ['10.210.0.2', '198.51.100.10', 6, 40000, 80] }, expires: 3595, counter: { packets: 4, bytes: 900 } } }] } },
      { set: { family: 'inet', name: 'drops', table: 'kiln_x', elem: [{ elem: { val: { concat: ['10.210.0.2', '169.254.169.254', 'tcp', 40001, 80] }, expires: 3600, counter: { packets: 2, bytes: 120 } } }] } },
      { set: { family: 'inet', name: 'odrops', table: 'kiln_x', elem: [{ elem: { val: { concat: ['10.210.0.2', '198.51.100.10', 'icmp'] }, expires: 3000, counter: { packets: 1, bytes: 84 } } }] } },
      { set: { family: 'netdev', name: 'spoofs', table: 'kiln_x', elem: [{ elem: { val: { concat: ['02:6b:00:00:00:01', '10.210.0.77', '198.51.100.10'] }, expires: 3600, counter: { packets: 3, bytes: 180 } } }] } },
    ],
  });
  const r = parseAccounting(json, 'kiln_x', ctx, now);
  assert.deepEqual(r.counters, { packetsOut: 5, bytesOut: 300, packetsIn: 4, bytesIn: 900, packetsDropped: 2, bytesDropped: 120, packetsSpoofed: 3 });
  assert.equal(r.flows.length, 5);
  const [out, inn, drop, icmp, spoof] = r.flows;
  assert.deepEqual(out, { verdict: 'accept', reason: null, protocol: 'tcp', src: '10.210.0.2', srcPort: 40000, dst: '198.51.100.10', dstPort: 80, dir: 'out', packets: 5, bytes: 300, lastSeenMs: now - 10_000 });
  assert.equal(inn?.protocol, 'tcp', 'protocol numbers are named');
  assert.equal(inn?.dir, 'in');
  assert.equal(drop?.reason, 'reserved');
  assert.deepEqual([icmp?.protocol, icmp?.srcPort, icmp?.reason, icmp?.lastSeenMs], ['icmp', null, 'policy', now - 600_000]);
  assert.deepEqual([spoof?.reason, spoof?.src], ['spoof', '10.210.0.77']);
});
