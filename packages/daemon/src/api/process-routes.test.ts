/**
 * Background processes, terminals and directory transfers through kilnd's API to the real agent
 * (run on the host over a unix socket, testing/real-agent.ts). processes.test (e2e) checks the
 * same against a real VM.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import websocket from '@fastify/websocket';
import { WebSocket } from 'ws';
import { registerPtyRoutes } from './routes/pty.js';
import { fakeHarness } from '../testing/harness.js';
import { startRealAgent, type RealAgent } from '../testing/real-agent.js';

let agent: RealAgent;
let h: Awaited<ReturnType<typeof fakeHarness>>;
let id: string;
let base: string;

before(async () => {
  agent = await startRealAgent();
  h = await fakeHarness({ connectAgent: agent.connectAgent });
  const c = await h.app.inject({ method: 'POST', url: '/v1/sandboxes', payload: {} });
  assert.equal(c.statusCode, 201, c.body);
  id = (c.json() as { id: string }).id;
  base = await h.app.listen({ host: '127.0.0.1', port: 0 });
});
after(async () => {
  await h?.close();
  await agent?.stop();
});

const url = (p: string) => `${base}/v1/sandboxes/${id}${p}`;
const json = async (method: string, p: string, body?: unknown) => {
  const res = await fetch(url(p), { method, ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};
const ndjson = async (p: string) => (await (await fetch(url(p))).text()).split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const out = (evs: Array<Record<string, unknown>>, type = 'stdout') => Buffer.concat(evs.filter((e) => e.type === type).map((e) => Buffer.from(e.data as string, 'base64'))).toString();

test('a process started over HTTP: output from offsets, wait, stdin, signals, and coded errors', async () => {
  const started = await json('POST', '/processes', { shell: 'echo one; echo two >&2; read x; echo "got $x"; exit 5', stdin: true, tag: 't' });
  assert.equal(started.status, 201, JSON.stringify(started.body));
  const pid = started.body.pid as number;
  assert.equal(started.body.state, 'running');
  assert.match(started.body.startedAt as string, /^\d{4}-\d\d-\d\dT/);
  assert.equal((await json('POST', `/processes/${pid}/stdin`, { data: Buffer.from('abc\n').toString('base64') })).body.bytes, 4);
  const waited = await json('GET', `/processes/${pid}/wait`);
  assert.equal(waited.body.exitCode, 5);
  const evs = await ndjson(`/processes/${pid}/output?offset=0&follow=true`);
  assert.equal(out(evs), 'one\ngot abc\n');
  assert.equal(out(evs, 'stderr'), 'two\n');
  assert.deepEqual(evs.at(-1), { type: 'exit', exitCode: 5, signal: null });
  const later = await ndjson(`/processes/${pid}/output?offset=8`);
  assert.equal(out(later), 'got abc\n');
  const list = await json('GET', '/processes');
  assert.ok((list.body.processes as Array<{ pid: number }>).some((p) => p.pid === pid));

  const sleeper = (await json('POST', '/processes', { argv: ['sleep', '1000'] })).body.pid as number;
  assert.deepEqual((await json('DELETE', `/processes/${sleeper}`)).body, { ok: true });
  assert.equal((await json('GET', `/processes/${sleeper}/wait`)).body.signal, 'SIGKILL');

  const errors: Array<[string, string, unknown, number, string]> = [
    ['GET', '/processes/4000000', undefined, 404, 'PROCESS_NOT_FOUND'],
    ['POST', `/processes/${pid}/stdin`, { data: 'aGk=' }, 409, 'PROCESS_NOT_RUNNING'],
    ['POST', `/processes/${sleeper}/signal`, { signal: 'SIGTERM' }, 409, 'PROCESS_NOT_RUNNING'],
    ['POST', '/processes', { argv: ['true'], shell: 'true' }, 400, 'INVALID_ARGUMENT'],
    ['POST', '/processes', { argv: ['true'], bogus: 1 }, 400, 'INVALID_ARGUMENT'],
    ['POST', '/processes', { argv: ['/no/such/bin'] }, 404, 'GUEST_NOT_FOUND'],
    ['POST', `/processes/${pid}/resize`, { cols: 1001, rows: 30 }, 400, 'INVALID_ARGUMENT'],
    ['POST', `/processes/${pid}/resize`, { cols: 80, rows: 0 }, 400, 'INVALID_ARGUMENT'],
    ['GET', `/processes/${pid}/output?offset=100000`, undefined, 400, 'GUEST_INVALID_ARGUMENT'],
  ];
  for (const [method, p, body, status, code] of errors) {
    const r = await json(method, p, body);
    assert.equal(r.status, status, `${method} ${p}: ${JSON.stringify(r.body)}`);
    assert.equal((r.body.error as { code: string }).code, code, `${method} ${p}`);
  }
  const audit = await fetch(`${base}/v1/audit?sandbox=${id}`).catch(() => null);
  void audit; // (the fake harness may not audit; the e2e test checks the records)
});

test('a terminal over a WebSocket: stty size after a resize, Ctrl-C, the exit code; absurd sizes are refused', async () => {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/v1/sandboxes/${id}/pty?cols=80&rows=24&cmd=${encodeURIComponent('PS1="$ " exec sh')}`);
  let screen = '';
  const control: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) screen += data.toString();
    else control.push(JSON.parse(data.toString()) as Record<string, unknown>);
    wake();
  });
  ws.on('close', wake);
  const closed = new Promise<void>((r) => ws.once('close', () => r()));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const until = async (re: RegExp) => {
    while (!re.test(screen)) {
      if (ws.readyState !== ws.OPEN) throw new Error(`closed; screen ${JSON.stringify(screen)}`);
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  const type = (s: string) => ws.send(Buffer.from(s));
  type('stty size\n');
  await until(/24 80\r\n/);
  ws.send(JSON.stringify({ type: 'resize', cols: 100, rows: 30 }));
  type('stty size\n');
  await until(/30 100\r\n/);
  ws.send(JSON.stringify({ type: 'resize', cols: 100000, rows: 30 }));
  while (control.length === 0) await new Promise<void>((r) => waiters.push(r));
  assert.equal((control[0]?.error as { code: string }).code, 'INVALID_ARGUMENT');
  type("sh -c 'echo started; exec sleep 1000'\n");
  await until(/started\r\n/);
  type('\x03');
  await until(/\^C/);
  type('exit 3\n');
  await closed;
  assert.deepEqual(control.at(-1), { type: 'exit', exitCode: 3, signal: null });

  // Not a PTY: refused before the upgrade.
  const plain = (await json('POST', '/processes', { argv: ['sleep', '5'] })).body.pid as number;
  const refused = new WebSocket(`${base.replace('http', 'ws')}/v1/sandboxes/${id}/processes/${plain}/pty`);
  const [status, body] = await new Promise<[number, string]>((resolve, reject) => {
    refused.once('open', () => reject(new Error('upgraded')));
    refused.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (b: Buffer) => (text += b.toString()));
      res.on('end', () => resolve([res.statusCode ?? 0, text]));
    });
  });
  assert.equal(status, 400);
  assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, 'PROCESS_NOT_PTY');
  await json('DELETE', `/processes/${plain}`);
});

test('directories as tar streams both ways, and rename', async () => {
  const src = join(agent.dir, 'src');
  mkdirSync(join(src, 'sub'), { recursive: true });
  writeFileSync(join(src, 'sub/a.txt'), 'alpha\n');
  const tar = spawnSync('tar', ['-C', src, '-cf', '-', '.']).stdout;
  const dest = join(agent.dir, 'dest/deeper');
  const up = await fetch(url(`/files/tar?path=${encodeURIComponent(dest)}`), { method: 'PUT', body: tar, headers: { 'content-type': 'application/x-tar' } });
  assert.equal(up.status, 200, await up.clone().text());
  assert.equal(readFileSync(join(dest, 'sub/a.txt'), 'utf8'), 'alpha\n');
  const mv = await json('POST', '/files/rename', { from: join(dest, 'sub/a.txt'), to: join(dest, 'b.txt') });
  assert.deepEqual(mv.body, { ok: true });
  const down = await fetch(url(`/files/tar?path=${encodeURIComponent(dest)}`));
  assert.equal(down.headers.get('content-type'), 'application/x-tar');
  const listing = spawnSync('tar', ['-tf', '-'], { input: Buffer.from(await down.arrayBuffer()) }).stdout.toString();
  assert.deepEqual(listing.split('\n').filter(Boolean).sort(), ['./', './b.txt', './sub/']);
  const bad = await fetch(url(`/files/tar?path=${encodeURIComponent(join(dest, 'x'))}`), { method: 'PUT', body: 'not a tar', headers: { 'content-type': 'application/x-tar' } });
  assert.equal(bad.status, 400);
  assert.equal((await json('POST', '/files/rename', { from: join(dest, 'nope'), to: join(dest, 'x') })).status, 404);
});

test('a terminal client that never reads holds kilnd to what the sockets buffer, however much the process writes', async () => {
  // A second app on the same manager, with an audit sink that keeps the terminal records.
  const records: Array<{ type: string; data: Record<string, unknown> }> = [];
  const app = Fastify();
  await app.register(websocket);
  registerPtyRoutes(app, h.manager, { append: async (r) => void records.push(r as (typeof records)[number]) });
  const wsBase = (await app.listen({ host: '127.0.0.1', port: 0 })).replace('http', 'ws');
  try {
    const total = 64 * 1024 * 1024;
    const ws = new WebSocket(`${wsBase}/v1/sandboxes/${id}/pty?cmd=${encodeURIComponent(`stty raw -echo; head -c ${total} /dev/zero`)}`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    (ws as unknown as { _socket: { pause(): void } })._socket.pause(); // never reads again
    const pid = (records.find((r) => r.data.event === 'start')?.data.pid ?? 0) as number;
    assert.ok(pid > 0);
    for (;;) {
      const info = await json('GET', `/processes/${pid}/wait`);
      if (info.body.state === 'exited') break;
    }
    ws.terminate();
    while (!records.some((r) => r.data.event === 'end')) await new Promise((r) => setTimeout(r, 20));
    const end = records.find((r) => r.data.event === 'end')?.data ?? {};
    // Handed to the socket: what the kernel's socket buffers took, plus one read (32 KiB).
    assert.ok((end.bytesOut as number) < 16 * 1024 * 1024, `kilnd sent ${String(end.bytesOut)} bytes to a client that read nothing`);
  } finally {
    await app.close();
  }
});

test('the terminal routes are in the OpenAPI document, and a plain GET is 426 and starts nothing', async () => {
  const doc = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, unknown> };
  assert.ok(doc.paths['/v1/sandboxes/{id}/pty'], 'the shortcut is documented');
  assert.ok(doc.paths['/v1/sandboxes/{id}/processes/{pid}/pty'], 'attach is documented');
  const before = ((await json('GET', '/processes')).body.processes as unknown[]).length;
  const res = await fetch(url('/pty?cols=80&rows=24'));
  assert.equal(res.status, 426);
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'UPGRADE_REQUIRED');
  assert.equal(((await json('GET', '/processes')).body.processes as unknown[]).length, before);
});
