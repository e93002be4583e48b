// The host side of the guestctl channel against a stand-in guest (a unix socket that answers
// lines); the real helper in a real guest is exercised by the e2e template tests.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GuestCtlChannel, startGuestCtlSession } from './guest-ctl.js';
import { lineServer } from '../testing/line-server.js';

describe('guestctl channel', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-guestctl-host-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('personalizes in order (clock first), then pings dockerd', async () => {
    const seen: string[] = [];
    const sock = join(dir, 'a.sock');
    const server = await lineServer(sock, (l) => (l.startsWith('nic') ? 'ok eth7' : l.startsWith('docker-ping') ? 'ok 42' : 'ok'), seen);
    try {
      const net = { mac: '02:00:00:00:00:01', address: '10.9.0.2/30', gateway: '10.9.0.1', dns: ['10.9.0.1'] };
      const s = startGuestCtlSession(sock, { hostname: 'sb-1', net, timeoutMs: 2000, dockerTimeoutMs: 1000 });
      const r = await s.personalized;
      assert.equal(r.nic, 'eth7');
      assert.deepEqual(await s.dockerReady, { waitedMs: 42 });
      const verbs = seen.map((l) => l.split(' ').slice(0, 1).join(' '));
      assert.equal(verbs[0], 'clock');
      const after = seen.slice(r.clockPasses);
      assert.deepEqual(after.map((l) => l.split(' ')[0]), ['entropy', 'hostname', 'machine-id', 'nic', 'link', 'mac', 'mtu', 'addr', 'link', 'route-default', 'resolv', 'docker-ping']);
      assert.ok(after.includes('addr - 10.9.0.2 30') && after.includes('mac - 02:00:00:00:00:01') && after.includes('hostname sb-1'));
      const clock = seen[0]?.split(' ') ?? [];
      assert.ok(Math.abs(Number(clock[1]) * 1000 - Date.now()) < 5000, 'clock carries the host time');
    } finally {
      server.close();
    }
  });

  it("a guest's error is GUEST_CTL_ERROR naming the request; silence is PERSONALIZE_FAILED", async () => {
    const sock = join(dir, 'b.sock');
    const server = await lineServer(sock, (l) => (l.startsWith('hostname') ? 'err 22 bad hostname' : l.startsWith('docker-ping') ? null : 'ok'), []);
    try {
      const s = startGuestCtlSession(sock, { hostname: 'x', net: null, timeoutMs: 300, dockerTimeoutMs: 100 });
      await assert.rejects(s.personalized, (e: Error & { code?: string }) => e.code === 'GUEST_CTL_ERROR' && /hostname: bad hostname/.test(e.message));
      await assert.rejects(s.dockerReady as Promise<unknown>);
      const ch = await GuestCtlChannel.connect(sock, 300);
      await assert.rejects(ch.send(['docker-ping /run/docker.sock 1000'], 200), (e: Error & { code?: string }) => e.code === 'PERSONALIZE_FAILED' && /within 200 ms/.test(e.message));
      ch.close();
    } finally {
      server.close();
    }
  });

  it('after a restore: a warm run, then the docker ping', async () => {
    const seen: string[] = [];
    const sock = join(dir, 'c.sock');
    const server = await lineServer(sock, (l) => (l.startsWith('warm') ? 'ok 7' : l.startsWith('docker-ping') ? 'ok 5' : 'ok'), seen);
    try {
      const s = startGuestCtlSession(sock, { hostname: 'sb-2', net: null, timeoutMs: 2000, dockerTimeoutMs: 1000, warm: true });
      await s.personalized;
      assert.deepEqual(await s.dockerReady, { waitedMs: 5 });
      assert.deepEqual(seen.slice(-2).map((l) => l.split(' ')[0]), ['warm', 'docker-ping']);
    } finally {
      server.close();
    }
  });

  it('cannot connect: PERSONALIZE_FAILED naming the socket', async () => {
    await assert.rejects(GuestCtlChannel.connect(join(dir, 'none.sock'), 300), /cannot connect to .*none\.sock/);
  });
});
