import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, test } from 'node:test';
import type { AgentClient } from '@kiln/protocol';
import { hasCode, startAgent, type TestAgent } from './test-agent.js';

let agent: TestAgent;
let client: AgentClient;
let root: string;
before(async () => {
  agent = await startAgent();
  client = await agent.connect();
  root = join(agent.dir, 'files');
  mkdirSync(root);
});
after(async () => {
  client?.close();
  await agent?.stop();
});

/** Yields `data` in irregular chunk sizes. */
function chunked(data: Buffer): Readable {
  return Readable.from(
    (function* () {
      let off = 0;
      let i = 0;
      while (off < data.length) {
        const n = [1, 65536, 300_000, 777, 1 << 20][i++ % 5] as number;
        yield data.subarray(off, off + n);
        off += n;
      }
    })(),
  );
}

async function download(path: string, slow = false): Promise<Buffer> {
  const { stream, result } = client.readFile(path);
  const parts: Buffer[] = [];
  await pipeline(
    stream,
    new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, cb) {
        parts.push(chunk);
        if (slow) setTimeout(cb, 2);
        else cb();
      },
    }),
  );
  const r = await result;
  const data = Buffer.concat(parts);
  assert.equal(r.bytes, data.length);
  return data;
}

test('a random 5 MB file round-trips byte for byte both ways', async () => {
  const data = randomBytes(5 * 1024 * 1024 + 3);
  const path = join(root, 'up.bin');
  const w = await client.writeFile(path, chunked(data), { mode: 0o600 });
  assert.equal(w.bytes, data.length);
  assert.ok(readFileSync(path).equals(data), 'uploaded bytes differ');
  assert.equal(statSync(path).mode & 0o777, 0o600);

  const local = join(root, 'down.bin');
  const other = randomBytes(5 * 1024 * 1024 + 11);
  writeFileSync(local, other);
  assert.ok((await download(local)).equals(other), 'downloaded bytes differ');
  assert.ok((await download(local, true)).equals(other), 'downloaded bytes differ with a slow consumer');
});

test('empty files and mkdirs work', async () => {
  const path = join(root, 'a/b/c/empty');
  await assert.rejects(client.writeFile(path, Readable.from([])), hasCode('NOT_FOUND'));
  const w = await client.writeFile(path, Readable.from([]), { mkdirs: true });
  assert.equal(w.bytes, 0);
  assert.equal(statSync(path).size, 0);
  assert.equal((await download(path)).length, 0);
});

test('a failed upload leaves nothing behind', async () => {
  const dir = join(root, 'aborted');
  mkdirSync(dir);
  const path = join(dir, 'target');
  const source = new Readable({ read() {} });
  const p = client.writeFile(path, source);
  source.push(randomBytes(2 * 1024 * 1024));
  setTimeout(() => source.destroy(new Error('source broke')), 100);
  await assert.rejects(p, /source broke/);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(readdirSync(dir), []);
  // An existing file is left untouched by a failed overwrite.
  writeFileSync(path, 'old');
  const s2 = new Readable({ read() {} });
  const p2 = client.writeFile(path, s2);
  s2.push('new contents');
  setTimeout(() => s2.destroy(new Error('again')), 50);
  await assert.rejects(p2, /again/);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(readFileSync(path, 'utf8'), 'old');
  assert.deepEqual(readdirSync(dir), ['target']);
});

test('destroying a download early cancels it and the channel keeps working', async () => {
  const path = join(root, 'big.bin');
  writeFileSync(path, randomBytes(8 * 1024 * 1024));
  const { stream, result } = client.readFile(path);
  await new Promise((r) => stream.once('data', r));
  stream.destroy();
  await assert.rejects(result, hasCode('CANCELLED'));
  assert.equal((await client.stat(path)).size, 8 * 1024 * 1024);
});

test('stat, list, mkdir and remove', async () => {
  const dir = join(root, 'tree');
  await client.mkdir(dir, { mode: 0o750 });
  const st = await client.stat(dir);
  assert.equal(st.type, 'dir');
  assert.equal(st.path, dir);
  await client.mkdir(join(dir, 'x/y/z'), { recursive: true });
  await client.mkdir(join(dir, 'x/y/z'), { recursive: true }); // existing is fine
  writeFileSync(join(dir, 'f.txt'), 'hello');
  const f = await client.stat(join(dir, 'f.txt'));
  assert.deepEqual([f.type, f.size], ['file', 5]);
  assert.ok(Math.abs(f.mtimeMs - Date.now()) < 60_000);

  const entries = await client.list(dir);
  assert.deepEqual(
    entries.map((e) => [e.name, e.type]),
    [
      ['f.txt', 'file'],
      ['x', 'dir'],
    ],
  );
  await client.remove(join(dir, 'f.txt'));
  await client.remove(join(dir, 'x'), { recursive: true });
  assert.deepEqual(await client.list(dir), []);
  await client.remove(dir);
  await assert.rejects(client.stat(dir), hasCode('NOT_FOUND'));
});

test('list pages through a large directory', async () => {
  const dir = join(root, 'many');
  mkdirSync(dir);
  const names = Array.from({ length: 1500 }, (_, i) => `file-with-a-fairly-long-name-${String(i).padStart(5, '0')}`);
  for (const n of names) writeFileSync(join(dir, n), '');
  const entries = await client.list(dir);
  assert.deepEqual(
    entries.map((e) => e.name),
    [...names].sort(),
  );
});

test('missing and wrong-type paths give the right codes', async () => {
  const missing = join(root, 'missing');
  const file = join(root, 'plain');
  writeFileSync(file, 'x');
  await assert.rejects(client.stat(missing), hasCode('NOT_FOUND'));
  await assert.rejects(client.list(missing), hasCode('NOT_FOUND'));
  await assert.rejects(client.remove(missing), hasCode('NOT_FOUND'));
  await assert.rejects(client.readFile(missing).result, hasCode('NOT_FOUND'));
  await assert.rejects(client.writeFile(join(missing, 'x'), Readable.from([Buffer.from('x')])), hasCode('NOT_FOUND'));
  await assert.rejects(client.list(file), hasCode('NOT_DIRECTORY'));
  await assert.rejects(client.stat(join(file, 'sub')), hasCode('NOT_DIRECTORY'));
  await assert.rejects(client.readFile(root).result, hasCode('IS_DIRECTORY'));
  await assert.rejects(client.writeFile(root, Readable.from([Buffer.from('x')])), hasCode('IS_DIRECTORY'));
  await assert.rejects(client.mkdir(file), hasCode('EXISTS'));
  await assert.rejects(client.mkdir(root), hasCode('EXISTS'));
  mkdirSync(join(root, 'full'));
  writeFileSync(join(root, 'full', 'f'), '');
  await assert.rejects(client.remove(join(root, 'full')), hasCode('EXISTS'));
  await assert.rejects(client.remove('/'), hasCode('INVALID_ARGUMENT'));
  await assert.rejects(client.stat('relative'), hasCode('INVALID_ARGUMENT'));
});
