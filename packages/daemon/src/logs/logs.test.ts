import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LineSplitter, sanitizeLine } from './lines.js';
import { GuestLogs } from './guest-logs.js';
import { SandboxLogStore } from './store.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'kiln-logs-'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(20);
  }
}

test('logs: guest bytes become safe lines (no terminal control, CR dropped, long lines cut)', () => {
  assert.equal(sanitizeLine(Buffer.from('ok\ttab\r')), 'ok\ttab');
  assert.equal(sanitizeLine(Buffer.from('\x1b[2Jclear\x07\x9b')), '\uFFFD[2Jclear\uFFFD\uFFFD');
  assert.equal(sanitizeLine(Buffer.from([0x61, 0xff, 0x62])), 'a\uFFFDb');
  const got: string[] = [];
  const s = new LineSplitter((l) => got.push(l), 8);
  s.push(Buffer.from('ab'));
  s.push(Buffer.from('c\nd'));
  s.push(Buffer.from('0123456789\n\n'));
  s.push(Buffer.from('tail'));
  s.end();
  assert.deepEqual(got, ['abc', 'd0123456', '789', '', 'tail']);
});

test('logs: a flood never stores more than the cap, keeps the newest lines, and counts what it dropped', () => {
  const dir = tmp();
  try {
    const cap = 64 * 1024;
    const st = new SandboxLogStore(dir, cap);
    for (let i = 0; i < 20_000; i++) {
      st.append('console', `line ${i} ${'x'.repeat(40)}`);
      if (i % 500 === 0) {
        st.flush();
        assert.ok(st.storedBytes() <= cap, `stored ${st.storedBytes()} > cap ${cap}`);
      }
    }
    st.flush();
    const received = st.bytesIn;
    const stored = st.storedBytes();
    assert.ok(stored <= cap && stored >= cap / 2 - 200, `stored ${stored}`);
    assert.equal(st.meta.droppedBytes + stored, received, 'every byte is either stored or counted as dropped');
    st.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A stand-in for QEMU's `-chardev socket,server=on,wait=off`: one client at a time. */
function chardevServer(path: string): { server: Server; clients: Socket[]; ready: Promise<void> } {
  const clients: Socket[] = [];
  const server = createServer((c) => clients.push(c));
  const ready = new Promise<void>((r) => server.listen(path, r));
  return { server, clients, ready };
}

test('logs: the collector stores console and tagged service lines, follows, reconnects, and keeps logs after destroy', async () => {
  const root = tmp();
  const id = 'sb-00000000abcd';
  const con = chardevServer(join(root, 'console.sock'));
  const svc = chardevServer(join(root, 'logs.sock'));
  await Promise.all([con.ready, svc.ready]);
  const logs = new GuestLogs({ dir: join(root, 'logs'), maxBytesPerSandbox: 1024 * 1024, retentionMs: 1000 });
  try {
    logs.attach(id, { consoleSocket: join(root, 'console.sock'), logsSocket: join(root, 'logs.sock') });
    const followed: string[] = [];
    logs.follow(id, (l) => followed.push(`${l.service}:${l.text}`), () => followed.push('END'));
    await until(() => con.clients.length === 1 && svc.clients.length === 1);
    con.clients[0]?.write('Linux version 6.1\r\nkiln-init: guest init started\r\n');
    svc.clients[0]?.write('dockerd level=info msg="API listen on /run/docker.sock"\nagent started\nbogus line\n');
    await until(() => followed.length >= 5);
    assert.deepEqual(followed.slice(0, 5), [
      'console:Linux version 6.1',
      'console:kiln-init: guest init started',
      'dockerd:level=info msg="API listen on /run/docker.sock"',
      'agent:started',
      'agent:bogus line',
    ]);
    // QEMU drops the client (as when kilnd restarts): the collector connects again.
    svc.clients[0]?.destroy();
    await until(() => svc.clients.length === 2);
    svc.clients[1]?.write('dockerd after reconnect\n');
    await until(() => followed.includes('dockerd:after reconnect'));
    logs.detach(id, { destroyed: true });
    assert.equal(followed.at(-1), 'END');
    const stored = logs.read(id).map((l) => `${l.service}:${l.text}`);
    assert.ok(stored.includes('dockerd:after reconnect') && stored.includes('console:Linux version 6.1'));
    assert.equal(logs.has(id), true);
    // retention: kept while young, removed once past it
    assert.deepEqual(logs.sweep(new Set()), []);
    assert.deepEqual(logs.sweep(new Set(), Date.now() + 5000), [id]);
    assert.equal(existsSync(logs.dirOf(id)), false);
  } finally {
    logs.close();
    con.server.close();
    svc.server.close();
    for (const c of [...con.clients, ...svc.clients]) c.destroy();
    rmSync(root, { recursive: true, force: true });
  }
});
