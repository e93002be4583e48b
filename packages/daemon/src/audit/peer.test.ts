import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PEERCRED_HELPER, PERL_ASKER, peerCredentials } from './peer.js';

const O_NONBLOCK = 0o4000;
const flagsOf = (fd: number): number => parseInt(/^flags:\s+(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1] ?? '0', 8);

test('peer credentials: the connection stays non-blocking in kilnd (a blocking one froze the event loop on a slow reader)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-peer-'));
  const path = join(dir, 's.sock');
  const accepted = new Promise<Socket>((resolve) => {
    const server = createServer(resolve).listen(path);
    t.after(() => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    });
  });
  const client = connect(path);
  t.after(() => client.destroy());
  const sock = await accepted;
  const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
  assert.ok(flagsOf(fd) & O_NONBLOCK, 'accepted sockets start non-blocking');
  const cred = await peerCredentials(sock);
  assert.deepEqual(cred, { pid: process.pid, uid: process.getuid?.(), gid: process.getgid?.() });
  assert.ok(flagsOf(fd) & O_NONBLOCK, 'still non-blocking after the lookup');
  sock.destroy();
});

test('peer credentials: the static helper (built next to kilnd) and the perl fallback name the same peer, non-blocking after both', async (t) => {
  assert.ok(existsSync(PEERCRED_HELPER), `npm run build makes ${PEERCRED_HELPER}`);
  const dir = mkdtempSync(join(tmpdir(), 'kiln-peer-'));
  const path = join(dir, 's.sock');
  const accepted = new Promise<Socket>((resolve) => {
    const server = createServer(resolve).listen(path);
    t.after(() => {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    });
  });
  const client = connect(path);
  t.after(() => client.destroy());
  const sock = await accepted;
  const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
  const me = { pid: process.pid, uid: process.getuid?.(), gid: process.getgid?.() };
  assert.deepEqual(await peerCredentials(sock, 5000, [PEERCRED_HELPER, []]), me);
  assert.deepEqual(await peerCredentials(sock, 5000, PERL_ASKER), me);
  assert.ok(flagsOf(fd) & O_NONBLOCK, 'still non-blocking');
  sock.destroy();
});
