import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProtocolError } from './errors.js';
import { FrameDecoder, MAX_BODY_BYTES, MAX_FRAME_BYTES, MAX_HEADER_BYTES, encodeFrame } from './frame.js';
import { checkHeader, checkOp } from './messages.js';

function rawFrame(len: number, headerLen: number, rest: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(len, 0);
  b.writeUInt32BE(headerLen, 4);
  return Buffer.concat([b, rest]);
}

function assertProtocolError(fn: () => unknown, code: string): void {
  assert.throws(fn, (err: unknown) => err instanceof ProtocolError && err.code === code);
}

test('frames round-trip with and without a binary body', () => {
  const body = Buffer.from([0, 1, 2, 255, 0x0a, 0x0d, 0]);
  const d = new FrameDecoder();
  const frames = d.push(Buffer.concat([encodeFrame({ k: 'data', id: 1, s: 'file' }, body), encodeFrame({ k: 'end', id: 1, s: 'file' })]));
  assert.equal(frames.length, 2);
  assert.deepEqual(frames[0]?.header, { k: 'data', id: 1, s: 'file' });
  assert.deepEqual(frames[0]?.body, body);
  assert.deepEqual(frames[1]?.header, { k: 'end', id: 1, s: 'file' });
  assert.equal(frames[1]?.body.length, 0);
  assert.equal(d.bufferedBytes, 0);
});

test('frames split into single bytes and merged across chunk boundaries decode identically', () => {
  const inputs = Array.from({ length: 20 }, (_, i) => ({
    header: { k: 'data', id: i + 1, s: 'stdout', note: 'é✓'.repeat(i) },
    body: Buffer.alloc(i * 37, i),
  }));
  const wire = Buffer.concat(inputs.map((f) => encodeFrame(f.header, f.body)));
  for (const chunkSize of [1, 3, 7, 64, 1000, wire.length]) {
    const d = new FrameDecoder();
    const out = [];
    for (let off = 0; off < wire.length; off += chunkSize) out.push(...d.push(wire.subarray(off, off + chunkSize)));
    assert.equal(out.length, inputs.length, `chunk size ${chunkSize}`);
    out.forEach((f, i) => {
      assert.deepEqual(f.header, inputs[i]?.header);
      assert.deepEqual(f.body, inputs[i]?.body);
    });
  }
});

test('a maximum-size body is accepted', () => {
  const body = Buffer.alloc(MAX_BODY_BYTES, 7);
  const [f] = new FrameDecoder().push(encodeFrame({ k: 'data', id: 1, s: 'file' }, body));
  assert.equal(f?.body.length, MAX_BODY_BYTES);
});

test('an oversize frame fails with FRAME_TOO_LARGE from its 8-byte prefix alone', () => {
  assertProtocolError(() => new FrameDecoder().push(rawFrame(MAX_FRAME_BYTES + 1, 10)), 'FRAME_TOO_LARGE');
  assertProtocolError(() => new FrameDecoder().push(rawFrame(0xffffffff, 10)), 'FRAME_TOO_LARGE');
  assertProtocolError(() => new FrameDecoder().push(rawFrame(MAX_HEADER_BYTES + 100, MAX_HEADER_BYTES + 1)), 'FRAME_TOO_LARGE');
  assertProtocolError(() => new FrameDecoder().push(rawFrame(4 + 2 + MAX_BODY_BYTES + 1, 2)), 'FRAME_TOO_LARGE');
  assertProtocolError(() => encodeFrame({ k: 'data', id: 1, s: 'file' }, Buffer.alloc(MAX_BODY_BYTES + 1)), 'FRAME_TOO_LARGE');
  assertProtocolError(() => encodeFrame({ pad: 'x'.repeat(MAX_HEADER_BYTES) }), 'FRAME_TOO_LARGE');
});

test('garbage fails with MALFORMED_FRAME or MALFORMED_HEADER and poisons the decoder', () => {
  assertProtocolError(() => new FrameDecoder().push(rawFrame(2, 0)), 'MALFORMED_FRAME');
  assertProtocolError(() => new FrameDecoder().push(rawFrame(10, 20)), 'MALFORMED_FRAME');
  assertProtocolError(() => new FrameDecoder().push(rawFrame(4, 0)), 'MALFORMED_HEADER');
  const bad = (bytes: Buffer) => rawFrame(4 + bytes.length, bytes.length, bytes);
  assertProtocolError(() => new FrameDecoder().push(bad(Buffer.from('{not json'))), 'MALFORMED_HEADER');
  assertProtocolError(() => new FrameDecoder().push(bad(Buffer.from('[1,2]'))), 'MALFORMED_HEADER');
  assertProtocolError(() => new FrameDecoder().push(bad(Buffer.from('null'))), 'MALFORMED_HEADER');
  assertProtocolError(() => new FrameDecoder().push(bad(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]))), 'MALFORMED_HEADER');
  // Printable junk, as from a wrong peer: "GET / HTTP/1.1" reads as a 1.2 GB frame.
  assertProtocolError(() => new FrameDecoder().push(Buffer.from('GET / HTTP/1.1\r\n\r\n')), 'FRAME_TOO_LARGE');

  const d = new FrameDecoder();
  assertProtocolError(() => d.push(rawFrame(2, 0)), 'MALFORMED_FRAME');
  assertProtocolError(() => d.push(encodeFrame({ k: 'end', id: 1, s: 'file' })), 'MALFORMED_FRAME');
});

test('headers that fail the schema are rejected with a message naming the field', () => {
  assert.equal(checkHeader({ k: 'req', id: 1, op: 'health', args: {} }).ok, true);
  assert.equal(checkHeader({ k: 'res', id: 1, ok: true, result: {} }).ok, true);
  assert.equal(checkHeader({ k: 'res', id: 0, ok: false, error: { code: 'X', message: 'y' } }).ok, true);
  assert.equal(checkHeader({ k: 'ack', id: 3, s: 'stdin', n: 10 }).ok, true);
  const bad: unknown[] = [
    { k: 'res', id: '1', ok: true, result: {} },
    { k: 'res', id: -1, ok: true, result: {} },
    { k: 'res', id: 1.5, ok: true, result: {} },
    { k: 'res', id: 1, ok: false },
    { k: 'res', id: 1, ok: false, error: { code: 5, message: 'x' } },
    { k: 'data', id: 1, s: 'bogus' },
    { k: 'data', id: 0, s: 'stdout' },
    { k: 'ack', id: 1, s: 'file', n: 0 },
    { k: 'ack', id: 1, s: 'file', n: -5 },
    { k: 'hello' },
    {},
  ];
  for (const h of bad) {
    const r = checkHeader(h);
    assert.equal(r.ok, false, JSON.stringify(h));
  }
  const r = checkHeader({ k: 'data', id: 1, s: 'bogus' });
  assert.ok(!r.ok && r.message.length > 0);
});

test('op args are validated strictly', () => {
  assert.equal(checkOp('exec', 'args', { argv: ['ls'] }).ok, true);
  assert.equal(checkOp('exec', 'args', { shell: 'ls', env: { A: 'b' }, timeoutMs: 5 }).ok, true);
  assert.equal(checkOp('exec', 'args', { argv: [] }).ok, false);
  assert.equal(checkOp('exec', 'args', { argv: ['ls'], timeoutMS: 5 }).ok, false, 'unknown field');
  assert.equal(checkOp('exec', 'args', { argv: ['a\u0000b'] }).ok, false, 'NUL in argv');
  assert.equal(checkOp('exec', 'args', { argv: ['ls'], env: { 'A=B': 'x' } }).ok, false, '= in env name');
  assert.equal(checkOp('file.stat', 'args', { path: 'relative/path' }).ok, false);
  assert.equal(checkOp('file.stat', 'args', { path: '/ok' }).ok, true);
  assert.equal(checkOp('sys.configure', 'args', { hostname: 'bad_host!' }).ok, false);
  assert.equal(checkOp('sys.configure', 'args', { machineId: 'A'.repeat(32) }).ok, false);
  assert.equal(checkOp('sys.configure', 'args', { entropyHex: 'abc' }).ok, false);
  const r = checkOp('file.write', 'args', { path: '/x', mode: 'rw' });
  assert.ok(!r.ok && r.message.includes('/mode'), !r.ok ? r.message : '');
});
