import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TcpHandle } from '@kiln/protocol';
import { GuestSocket, type OpenTcp } from './tunnel.js';

/** A fake agent connection: the test plays the guest through `h`. */
function fake(): { open: OpenTcp; h: { onData(b: Buffer): void | Promise<void>; onEnd(): void }; written: Buffer[]; closed: () => boolean; settle: (err?: Error) => void } {
  let handlers!: { onData(b: Buffer): void | Promise<void>; onEnd(): void };
  const written: Buffer[] = [];
  let closed = false;
  let settle!: (err?: Error) => void;
  const result = new Promise<{ bytesIn: number; bytesOut: number }>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve({ bytesIn: 0, bytesOut: 0 }));
  });
  result.catch(() => undefined);
  const open: OpenTcp = (_port, h) => {
    handlers = h;
    const handle: TcpHandle = { id: 1, write: async (b) => void written.push(b), end: () => undefined, close: () => void (closed = true), result };
    return handle;
  };
  return { open, get h() { return handlers; }, written, closed: () => closed, settle };
}

test('guest bytes are acked only while the reader keeps up: a reader that stops holds the ack back', async () => {
  const f = fake();
  const s = new GuestSocket(f.open, 80);
  s.pause();
  const chunk = Buffer.alloc(16 * 1024);
  let pending: Promise<void> | undefined;
  let sent = 0;
  while (!pending && sent < 10 * 1024 * 1024) {
    const r = f.h.onData(chunk);
    sent += chunk.length;
    if (r) pending = r;
  }
  assert.ok(pending, 'onData never held its ack back');
  assert.ok(sent <= 128 * 1024, `acked ${sent} bytes to a paused reader`);
  let acked = false;
  void pending.then(() => (acked = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(acked, false);
  s.resume();
  await pending;
  assert.equal(acked, true);
  s.destroy();
});

test('writes go to the agent; a refused connection destroys the socket with the code; destroy closes the handle', async () => {
  const f = fake();
  const s = new GuestSocket(f.open, 80);
  await new Promise<void>((r) => s.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'), () => r()));
  assert.equal(Buffer.concat(f.written).toString(), 'GET / HTTP/1.1\r\n\r\n');
  const err = new Promise<Error>((r) => s.once('error', r));
  f.settle(Object.assign(new Error('refused'), { code: 'CONNECTION_REFUSED' }));
  assert.equal(((await err) as Error & { code: string }).code, 'CONNECTION_REFUSED');
  assert.equal(s.failure, 'CONNECTION_REFUSED');
  assert.equal(f.closed(), true);
});
