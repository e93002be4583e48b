// In-process tests of Session: resynchronisation and host-session replacement, the two
// ways a virtio-serial port differs from a socket (no reliable EOF between hosts).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameDecoder, encodeFrame, type Frame } from '@kiln/protocol';
import { Resync } from './resync.js';
import { Session } from './session.js';
import { alive } from './test-agent.js';

const config = { agentVersion: 'test', dockerSocket: '/nonexistent/docker.sock', sysRoot: '/nonexistent', guestCtlPath: '', ptyHelperPath: '' };

function harness() {
  const frames: Frame[] = [];
  const decoder = new FrameDecoder();
  const session = new Session({ write: (b) => void frames.push(...decoder.push(b)) }, config, { onBadInput: 'resync' });
  const req = (id: number, op: string, args: unknown) => encodeFrame({ k: 'req', id, op, args });
  const until = async (pred: () => boolean, what: string) => {
    for (let i = 0; i < 300 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(pred(), `timed out waiting for ${what}`);
  };
  const res = (id: number) => frames.filter((f) => f.header.k === 'res' && f.header.id === id);
  return { frames, session, req, until, res };
}

test('after garbage the session answers id 0 and resumes at the next hello', async () => {
  const h = harness();
  h.session.push(Buffer.from('\x00\x00\x00\x02junk'));
  assert.equal(h.frames.length, 1);
  assert.equal(h.frames[0]?.header.id, 0);
  // More junk, a half frame, and a whole non-hello request are all skipped.
  h.session.push(Buffer.from('more junk {"k":"req" and stuff'));
  h.session.push(h.req(5, 'health', {}).subarray(0, 11));
  h.session.push(h.req(6, 'health', {}));
  // A hello split byte by byte is found.
  const hello = h.req(1, 'hello', { protocolVersion: 1, sessionId: 'b' });
  for (const byte of hello) h.session.push(Buffer.from([byte]));
  h.session.push(h.req(2, 'file.stat', { path: '/' }));
  // The two replies may come in either order: hello and file.stat run side by side in the agent.
  await h.until(() => h.res(1).length === 1 && h.res(2).length === 1, 'hello and stat replies');
  assert.equal(h.res(1)[0]?.header.ok, true);
  assert.equal(h.res(2)[0]?.header.ok, true);
  assert.equal(h.res(5).length + h.res(6).length, 0, 'skipped requests were not run');
  h.session.dispose();
});

test('a hello with a new sessionId aborts the previous session and frees its ids', async () => {
  const h = harness();
  h.session.push(h.req(1, 'hello', { protocolVersion: 1, sessionId: 'first' }));
  h.session.push(h.req(2, 'exec', { shell: 'echo $$; exec sleep 30' }));
  await h.until(() => h.frames.some((f) => f.header.k === 'data' && f.header.id === 2), 'exec output');
  const pid = Number(h.frames.find((f) => f.header.k === 'data')?.body.toString().trim());
  assert.ok(alive(pid));

  // The same session saying hello again changes nothing.
  h.session.push(h.req(3, 'hello', { protocolVersion: 1, sessionId: 'first' }));
  await h.until(() => h.res(3).length === 1, 'second hello');
  assert.ok(alive(pid));

  // A new host reuses ids 1 and 2.
  const before = h.frames.length;
  h.session.push(h.req(1, 'hello', { protocolVersion: 1, sessionId: 'second' }));
  h.session.push(h.req(2, 'exec', { argv: ['true'] }));
  await h.until(() => h.res(2).length === 1, 'new exec reply');
  await h.until(() => !alive(pid), 'old exec killed');
  await new Promise((r) => setTimeout(r, 100));
  const after = h.frames.slice(before);
  assert.deepEqual(
    after
      .filter((f) => f.header.k === 'res')
      .map((f) => [f.header.id, f.header.ok])
      .sort((a, b) => Number(a[0]) - Number(b[0])),
    [
      [1, true],
      [2, true],
    ],
    'only the new session got replies',
  );
  assert.equal((after.find((f) => f.header.id === 2 && f.header.k === 'res')?.header.result as { exitCode: number }).exitCode, 0);
  h.session.dispose();
});

test('Resync ignores lookalikes and waits for a split header', () => {
  const r = new Resync();
  const hello = encodeFrame({ k: 'req', id: 9, op: 'hello', args: { protocolVersion: 1 } });
  assert.equal(r.push(Buffer.from('{"k":"req"{"k":"req"')), undefined);
  assert.equal(r.push(encodeFrame({ k: 'req', id: 8, op: 'health', args: {} })), undefined);
  assert.equal(r.push(hello.subarray(0, 20)), undefined);
  const rest = r.push(Buffer.concat([hello.subarray(20), Buffer.from('tail')]));
  assert.ok(rest?.equals(Buffer.concat([hello, Buffer.from('tail')])));
});
