import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { after, test } from 'node:test';
import { AgentClient } from './client.js';
import { AgentError, ProtocolError } from './errors.js';
import { FrameDecoder, encodeFrame } from './frame.js';

const hello = { protocolVersion: 1, agentVersion: 'fake', bootId: 'b', hostname: 'h', pid: 1 };
const dir = mkdtempSync(join(tmpdir(), 'kiln-proto-'));
after(() => rmSync(dir, { recursive: true, force: true }));

type Frame = { header: Record<string, unknown>; body: Buffer };

/** An in-memory channel: the client gets one end, the test plays the agent on the other. */
function pair() {
  const toAgent = new PassThrough();
  const toHost = new PassThrough();
  const hostSide = Duplex.from({ readable: toHost, writable: toAgent });
  const frames: Frame[] = [];
  const decoder = new FrameDecoder();
  let onFrame: (f: Frame) => void = () => undefined;
  toAgent.on('data', (c: Buffer) => {
    for (const f of decoder.push(c)) {
      frames.push(f);
      onFrame(f);
    }
  });
  return {
    client: new AgentClient(hostSide, { requestTimeoutMs: 2000 }),
    frames,
    send: (h: object, body?: Buffer) => toHost.write(encodeFrame(h, body)),
    raw: (b: Buffer) => toHost.write(b),
    end: () => toHost.end(),
    onFrame: (fn: (f: Frame) => void) => (onFrame = fn),
  };
}

function waitFrames(frames: Frame[], n: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setInterval(() => {
      if (frames.length >= n) {
        clearInterval(t);
        resolve();
      }
    }, 2);
  });
}

const code = (c: string) => (err: unknown) => err instanceof AgentError && err.code === c;

test('requests get ids, replies resolve them, unknown ids are counted and ignored', async () => {
  const p = pair();
  p.onFrame((f) => {
    const id = f.header.id as number;
    p.send({ k: 'res', id: 999, ok: true, result: hello });
    p.send({ k: 'data', id: 998, s: 'stdout' }, Buffer.from('x'));
    p.send({ k: 'res', id, ok: true, result: hello });
  });
  const info = await p.client.hello();
  assert.deepEqual(info, hello);
  assert.deepEqual(p.client.agentInfo, hello);
  assert.equal(p.frames[0]?.header.k, 'req');
  assert.equal(p.frames[0]?.header.op, 'hello');
  assert.equal(p.client.stats.unknownIdFrames, 2);
  assert.equal(p.client.isClosed, false);
  p.client.close();
});

test('a result that fails its schema rejects that request only', async () => {
  const p = pair();
  p.onFrame((f) => {
    const id = f.header.id as number;
    if (f.header.op === 'file.stat') p.send({ k: 'res', id, ok: true, result: { path: '/x', type: 'weird' } });
    else p.send({ k: 'res', id, ok: true, result: {} });
  });
  await assert.rejects(p.client.stat('/x'), code('PROTOCOL_ERROR'));
  await p.client.mkdir('/y');
  assert.equal(p.client.stats.invalidResults, 1);
  p.client.close();
});

test('error replies carry the agent code', async () => {
  const p = pair();
  p.onFrame((f) => p.send({ k: 'res', id: f.header.id, ok: false, error: { code: 'NOT_FOUND', message: 'gone' } }));
  await assert.rejects(p.client.stat('/x'), (err: unknown) => err instanceof AgentError && err.code === 'NOT_FOUND' && err.message === 'gone');
  p.client.close();
});

test('a schema-invalid header fails the channel, rejects pending calls and does not throw', async () => {
  const p = pair();
  const closed = once(p.client, 'close');
  const pending = p.client.health();
  await waitFrames(p.frames, 1);
  p.send({ k: 'res', id: 'one', ok: true });
  const [reason] = await closed;
  assert.ok(reason instanceof ProtocolError && reason.code === 'MALFORMED_HEADER');
  await assert.rejects(pending, code('CHANNEL_CLOSED'));
  await assert.rejects(p.client.health(), code('CHANNEL_CLOSED'));
});

test('garbage bytes from the agent fail the channel', async () => {
  const p = pair();
  const closed = once(p.client, 'close');
  const pending = p.client.health();
  p.raw(Buffer.from('\x00\x00\x00\x02garbage'));
  const [reason] = await closed;
  assert.ok(reason instanceof ProtocolError && reason.code === 'MALFORMED_FRAME');
  await assert.rejects(pending, code('CHANNEL_CLOSED'));
});

test('the channel closing rejects every pending call with CHANNEL_CLOSED and emits close once', async () => {
  const p = pair();
  let closes = 0;
  p.client.on('close', () => closes++);
  const a = p.client.health();
  const b = p.client.stat('/x');
  const h = p.client.exec({ argv: ['sleep', '9'] });
  await waitFrames(p.frames, 3);
  p.end();
  await assert.rejects(a, code('CHANNEL_CLOSED'));
  await assert.rejects(b, code('CHANNEL_CLOSED'));
  await assert.rejects(h.result, code('CHANNEL_CLOSED'));
  p.client.close();
  await new Promise((r) => setImmediate(r));
  assert.equal(closes, 1);
});

test('requests time out with TIMEOUT', async () => {
  const toAgent = new PassThrough();
  const client = new AgentClient(Duplex.from({ readable: new PassThrough(), writable: toAgent }), { requestTimeoutMs: 50 });
  toAgent.resume();
  await assert.rejects(client.health(), code('TIMEOUT'));
  client.close();
});

test('an agent overrunning the flow-control window fails the channel', async () => {
  const p = pair();
  const closed = once(p.client, 'close');
  const { stream, result } = p.client.readFile('/big');
  await waitFrames(p.frames, 1);
  const id = p.frames[0]?.header.id;
  for (let i = 0; i < 6; i++) p.send({ k: 'data', id, s: 'file' }, Buffer.alloc(256 * 1024));
  const [reason] = await closed;
  assert.ok(reason instanceof ProtocolError && reason.code === 'PROTOCOL_ERROR', String(reason));
  await assert.rejects(result, code('CHANNEL_CLOSED'));
  assert.equal(stream.destroyed, true);
});

test('readFile verifies the size and hash the agent reports', async () => {
  const p = pair();
  p.onFrame((f) => {
    if (f.header.k !== 'req') return;
    const id = f.header.id;
    p.send({ k: 'data', id, s: 'file' }, Buffer.from('hello'));
    p.send({ k: 'end', id, s: 'file' });
    p.send({ k: 'res', id, ok: true, result: { bytes: 5, sha256: '0'.repeat(64) } });
  });
  const { stream, result } = p.client.readFile('/f');
  stream.on('error', () => undefined);
  stream.resume();
  await assert.rejects(result, code('PROTOCOL_ERROR'));
  p.client.close();
});

function fakeAgentServer(path: string, handle: (socket: Socket, f: Frame, n: number) => void) {
  let n = 0;
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    const d = new FrameDecoder();
    socket.on('data', (c) => d.push(c).forEach((f) => handle(socket, f, n++)));
    socket.on('error', () => undefined);
  });
  server.listen(path);
  return { server, sockets, close: () => (sockets.forEach((s) => s.destroy()), server.close()) };
}

test('connect re-sends hello with a new id until the agent answers', async () => {
  const path = join(dir, 'late.sock');
  const ids: unknown[] = [];
  const started = Date.now();
  const srv = fakeAgentServer(path, (socket, f) => {
    ids.push(f.header.id);
    // The agent "opens its port" 700 ms in: earlier hellos are lost.
    if (Date.now() - started > 700) socket.write(encodeFrame({ k: 'res', id: f.header.id, ok: true, result: hello }));
  });
  await once(srv.server, 'listening');
  const client = await AgentClient.connect(path, { timeoutMs: 5000, helloIntervalMs: 200 });
  assert.deepEqual(client.agentInfo, hello);
  assert.ok(ids.length >= 3, `hellos sent: ${ids.length}`);
  assert.equal(new Set(ids).size, ids.length, 'every hello has a new id');
  client.close();
  srv.close();
});

test('connect times out with TIMEOUT and destroys its socket', async () => {
  const path = join(dir, 'mute.sock');
  const srv = fakeAgentServer(path, () => undefined);
  await once(srv.server, 'listening');
  const t0 = Date.now();
  await assert.rejects(AgentClient.connect(path, { timeoutMs: 600, helloIntervalMs: 100 }), code('TIMEOUT'));
  assert.ok(Date.now() - t0 < 2000);
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(srv.sockets.length >= 1 && srv.sockets.every((s) => s.destroyed || s.readableEnded), 'socket closed');
  srv.close();
});

test('connect retries a missing socket until the timeout and reports the cause', async () => {
  await assert.rejects(
    AgentClient.connect(join(dir, 'nothing.sock'), { timeoutMs: 300 }),
    (err: unknown) => err instanceof AgentError && err.code === 'TIMEOUT' && (err.cause as { code?: string })?.code === 'ENOENT',
  );
});

test('connect rejects VERSION_MISMATCH without retrying', async () => {
  const path = join(dir, 'v2.sock');
  const srv = fakeAgentServer(path, (socket, f) =>
    socket.write(encodeFrame({ k: 'res', id: f.header.id, ok: false, error: { code: 'VERSION_MISMATCH', message: 'v2' } })),
  );
  await once(srv.server, 'listening');
  await assert.rejects(AgentClient.connect(path, { timeoutMs: 3000 }), code('VERSION_MISMATCH'));
  srv.close();
});

test('connect honours an abort signal', async () => {
  const path = join(dir, 'abort.sock');
  const srv = fakeAgentServer(path, () => undefined);
  await once(srv.server, 'listening');
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  await assert.rejects(AgentClient.connect(path, { timeoutMs: 5000, signal: ac.signal }), code('CANCELLED'));
  srv.close();
});

test('a download that times out tells the agent to stop sending', async () => {
  const toAgent = new PassThrough();
  const toHost = new PassThrough();
  const client = new AgentClient(Duplex.from({ readable: toHost, writable: toAgent }), { requestTimeoutMs: 100 });
  const seen: Record<string, unknown>[] = [];
  const d = new FrameDecoder();
  toAgent.on('data', (c: Buffer) => d.push(c).forEach((f) => seen.push(f.header)));
  const { stream, result } = client.readFile('/slow');
  await waitFrames(seen as unknown as Frame[], 1);
  const id = seen[0]?.id;
  toHost.write(encodeFrame({ k: 'data', id, s: 'file' }, Buffer.alloc(10)));
  await assert.rejects(result, code('TIMEOUT'));
  assert.equal(stream.destroyed, true);
  assert.deepEqual(seen.at(-1), { k: 'end', id, s: 'file', cancel: true });
  client.close();
});

test('a download whose reader pauses longer than the idle timeout does not time out: credit waits for the reader', async () => {
  const toAgent = new PassThrough();
  const toHost = new PassThrough();
  const client = new AgentClient(Duplex.from({ readable: toHost, writable: toAgent }), { requestTimeoutMs: 200 });
  const seen: Record<string, unknown>[] = [];
  const d = new FrameDecoder();
  toAgent.on('data', (c: Buffer) => d.push(c).forEach((f) => seen.push(f.header)));
  const { stream, result } = client.readFile('/big');
  await waitFrames(seen as unknown as Frame[], 1);
  const id = seen[0]?.id;
  // A full window: the stream's buffer is over its high-water mark, nothing is acked.
  const chunks = 4;
  for (let i = 0; i < chunks; i++) toHost.write(encodeFrame({ k: 'data', id, s: 'file' }, Buffer.alloc(256 * 1024, i)));
  await new Promise((r) => setTimeout(r, 1000)); // five idle timeouts with no frame either way
  assert.equal(stream.destroyed, false);
  assert.ok(!seen.some((h) => h.k === 'end'), 'no cancel was sent');
  const got: Buffer[] = [];
  stream.on('data', (b: Buffer) => got.push(b));
  await waitFrames(seen as unknown as Frame[], 2); // the reader took data: an ack
  toHost.write(encodeFrame({ k: 'end', id, s: 'file' }));
  const all = Buffer.concat(Array.from({ length: chunks }, (_, i) => Buffer.alloc(256 * 1024, i)));
  toHost.write(encodeFrame({ k: 'res', id, ok: true, result: { bytes: all.length, sha256: createHash('sha256').update(all).digest('hex') } }));
  assert.equal((await result).bytes, all.length);
  assert.equal(Buffer.concat(got).length, all.length);
  client.close();
});
