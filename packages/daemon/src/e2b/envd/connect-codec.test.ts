import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ConnectError,
  ConnectStream,
  CONNECT_STATUS,
  decodeEnvelopes,
  decodeRequest,
  encodeEnvelope,
  END_STREAM_FLAG,
  readBody,
  requestKind,
  sendUnary,
  sendUnaryError,
} from './connect-codec.js';

test('envelopes: 5-byte header (flags, u32 BE length) then the JSON; several decode in order', () => {
  const a = encodeEnvelope(0, '{"a":1}');
  assert.deepEqual([...a.subarray(0, 5)], [0, 0, 0, 0, 7]);
  const b = encodeEnvelope(END_STREAM_FLAG, '{}');
  const got = decodeEnvelopes(Buffer.concat([a, b]));
  assert.deepEqual(got.map((e) => [e.flags, e.body.toString()]), [[0, '{"a":1}'], [2, '{}']]);
});

test('envelopes: truncated or compressed ones are protocol errors', () => {
  assert.throws(() => decodeEnvelopes(Buffer.from([0, 0, 0])), (e: ConnectError) => e.code === 'invalid_argument');
  assert.throws(() => decodeEnvelopes(Buffer.concat([Buffer.from([0, 0, 0, 0, 9]), Buffer.from('{}')])), /promised 9 bytes/);
  assert.throws(() => decodeEnvelopes(encodeEnvelope(1, '{}')), /compressed/);
});

test('requests: unary JSON, streaming one envelope; anything else refused', () => {
  assert.equal(requestKind('application/json; charset=utf-8'), 'unary');
  assert.equal(requestKind('application/connect+json'), 'stream');
  assert.equal(requestKind('application/proto'), null);
  assert.deepEqual(decodeRequest(Buffer.from('{"path":"/x"}'), false), { path: '/x' });
  assert.deepEqual(decodeRequest(Buffer.alloc(0), false), {});
  assert.deepEqual(decodeRequest(encodeEnvelope(0, '{"pid":3}'), true), { pid: 3 });
  assert.throws(() => decodeRequest(Buffer.concat([encodeEnvelope(0, '{}'), encodeEnvelope(0, '{}')]), true), /exactly one/);
  assert.throws(() => decodeRequest(Buffer.from('[1]'), false), (e: ConnectError) => e.code === 'invalid_argument');
  assert.throws(() => decodeRequest(Buffer.from('{'), false), /cannot decode/);
});

test('error codes map onto Connect\'s HTTP statuses', () => {
  assert.equal(CONNECT_STATUS.not_found, 404);
  assert.equal(CONNECT_STATUS.already_exists, 409);
  assert.equal(CONNECT_STATUS.invalid_argument, 400);
  assert.equal(CONNECT_STATUS.unauthenticated, 401);
  assert.equal(CONNECT_STATUS.unavailable, 503);
  assert.equal(CONNECT_STATUS.deadline_exceeded, 504);
});

async function serve(fn: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(fn);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

test('unary over HTTP: 200 application/json, or the error status with {code, message}', async () => {
  const { url, server } = await serve(async (req, res) => {
    const body = await readBody(req);
    const msg = decodeRequest(body, false);
    if (msg.fail) sendUnaryError(res, new ConnectError('not_found', 'no such thing'));
    else sendUnary(res, { echo: msg });
  });
  try {
    const ok = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":1}' });
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('content-type') ?? '', /^application\/json/);
    assert.deepEqual(await ok.json(), { echo: { x: 1 } });
    const bad = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"fail":true}' });
    assert.equal(bad.status, 404);
    assert.deepEqual(await bad.json(), { code: 'not_found', message: 'no such thing' });
  } finally {
    server.close();
  }
});

test('streaming over HTTP: each envelope reaches the client before the next is produced, then the end-stream frame (with the error)', async () => {
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const { url, server } = await serve(async (req, res) => {
    decodeRequest(await readBody(req), true);
    const out = new ConnectStream(res);
    await out.send({ n: 1 });
    await gate; // the client must see message 1 before this resolves: no buffering
    await out.send({ n: 2 });
    out.end(new ConnectError('deadline_exceeded', 'too slow'));
    out.end(); // idempotent
  });
  try {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/connect+json' }, body: encodeEnvelope(0, '{}') });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/connect+json');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let buf = Buffer.alloc(0);
    while (buf.length < 5 + 7) {
      const { value, done } = await reader.read();
      assert.ok(!done, 'stream ended before the first message');
      buf = Buffer.concat([buf, Buffer.from(value)]);
    }
    assert.deepEqual(decodeEnvelopes(buf.subarray(0, 12)).map((e) => JSON.parse(e.body.toString())), [{ n: 1 }]);
    release();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf = Buffer.concat([buf, Buffer.from(value)]);
    }
    const all = decodeEnvelopes(buf);
    assert.deepEqual(all.map((e) => e.flags), [0, 0, END_STREAM_FLAG]);
    assert.deepEqual(JSON.parse((all[2] as { body: Buffer }).body.toString()), { error: { code: 'deadline_exceeded', message: 'too slow' } });
  } finally {
    server.close();
  }
});

test('streaming: a stream ended without messages still sends 200 and an empty end-stream frame', async () => {
  const { url, server } = await serve(async (req, res) => {
    await readBody(req);
    new ConnectStream(res).end();
  });
  try {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/connect+json' }, body: encodeEnvelope(0, '{}') });
    const all = decodeEnvelopes(Buffer.from(await res.arrayBuffer()));
    assert.deepEqual(all.map((e) => [e.flags, e.body.toString()]), [[END_STREAM_FLAG, '{}']]);
  } finally {
    server.close();
  }
});
