/**
 * Flow control end to end on a real microVM: a client that reads nothing of `cat /dev/zero`
 * stalls the command in the guest (it sleeps writing its stdout, having written little, and
 * writes nothing more while the client still reads nothing), and kilnd's memory stays flat
 * meanwhile. Leaving the response kills the command. Under TCG on a busy machine the guest
 * writes only a few MB/s, so "written little" alone would not tell a stall from slowness:
 * the second sample must show no progress at all.
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { DaemonFixture, integrationSkipReason } from './harness.js';
import { guestCat, stalledReader } from './stalled-reader.js';

const skip = integrationSkipReason();
const STALL_MS = Number(process.env.KILN_STALL_MS ?? 25_000);
const MiB = 1024 * 1024;

describe('a stalled reader on a real microVM', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('stall');
  let id = '';

  before(async () => {
    await fx.start();
    id = (await fx.client.create({})).id;
  });
  after(() => fx.close());

  fx.test('cat /dev/zero to a client that reads nothing: the guest blocks, kilnd stays flat', async () => {
    const r = await stalledReader(fx, id, STALL_MS);
    process.stderr.write(`stalled reader: kilnd RSS ${r.rssBeforeMiB.toFixed(1)} → ${r.rssAfterMiB.toFixed(1)} MiB; guest cat wrote ${r.writtenBytes} B, then ${r.writtenLaterBytes} B, sleeps in ${r.wchan}\n`);
    assert.ok(r.rssAfterMiB - r.rssBeforeMiB < 64, `kilnd grew by ${(r.rssAfterMiB - r.rssBeforeMiB).toFixed(1)} MiB under a stalled reader`);
    // libuv gives a child a socketpair for stdout: a blocked write sleeps in sock_alloc_send_pskb.
    assert.match(r.wchan, /^(pipe_write|sock_alloc_send_pskb)$/, 'the guest command is blocked writing its stdout');
    assert.ok(r.writtenBytes < 8 * MiB, `the guest command wrote ${r.writtenBytes} bytes for a client that read nothing`);
    assert.equal(r.writtenLaterBytes, r.writtenBytes, 'the guest command made no progress while the client read nothing');
    // The client left (stalledReader destroyed the response): the command is killed.
    let cat = await guestCat(fx, id);
    for (let i = 0; cat && i < 300; i++) {
      await new Promise((res) => setTimeout(res, 200));
      cat = await guestCat(fx, id);
    }
    assert.equal(cat, null, 'the command died with its reader');
  });
});
