import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { SandboxManager } from '../../sandbox/manager.js';
import { decodeEnvelopes, encodeEnvelope, END_STREAM_FLAG } from './connect-codec.js';
import { createEnvdHandler } from './handler.js';
import type { AuditSink } from '../../audit/guest-records.js';

/** A manager whose one sandbox runs a fake agent: pid 7 prints "hi" and exits 2. */
function fakeManager(opts: { down?: boolean } = {}) {
  const started: unknown[] = [];
  const holds = { taken: 0, open: 0 };
  const agent = {
    proc: async (op: string, args: Record<string, unknown>) => {
      if (op === 'proc.start') {
        started.push(args);
        return { pid: 7 };
      }
      if (op === 'proc.read') {
        return args.offset === 0
          ? { chunks: [{ type: 'stdout', offset: 0, data: Buffer.from('hi\n').toString('base64') }], dropped: 0, nextOffset: 3, end: 3, exit: null }
          : { chunks: [], dropped: 0, nextOffset: 3, end: 3, exit: { exitCode: 2, signal: null } };
      }
      if (op === 'proc.signal') throw Object.assign(new Error('no such process'), { code: 'NOT_FOUND' });
      if (op === 'proc.list') {
        return {
          processes: [
            { pid: 7, tag: null, argv: ['/bin/bash', '-c', 'x'], cwd: '/home/user', state: 'running' },
            { pid: 8, tag: null, argv: ['/bin/sleep', '1'], cwd: '/', state: 'exited' },
            { pid: 9, tag: 'kiln-e2b-watch-0a0b0c0d', argv: ['/opt/kiln/bin/node', '-e', '…'], cwd: '/', state: 'running' },
          ],
          nextOffset: null,
        };
      }
      throw new Error(`unexpected ${op}`);
    },
  };
  const manager = {
    wake: async () => ({}),
    touch: () => undefined,
    hold: () => {
      holds.taken++;
      holds.open++;
      let released = false;
      return () => {
        if (!released) holds.open--;
        released = true;
      };
    },
    agentFor: () => {
      if (opts.down) throw Object.assign(new Error('sandbox sb-x has no connected agent'), { status: 503 });
      return agent;
    },
    get: () => ({ spec: { env: { FROM_CREATE: '1' } } }),
  } as unknown as SandboxManager;
  return { manager, started, holds };
}

async function withServer(manager: SandboxManager, fn: (url: string) => Promise<void>, audit?: AuditSink): Promise<void> {
  const h = createEnvdHandler(manager, undefined, audit);
  const server = createServer((req, res) => h(req, res, { sandboxId: 'sb-x' }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    server.close();
  }
}

test('Start streams start → data → end → end-stream, as the user in their home, with the sandbox envs under the call\'s and the deadline as the process\'s timeout', async () => {
  const { manager, started } = fakeManager();
  await withServer(manager, async (url) => {
    const body = encodeEnvelope(0, JSON.stringify({ process: { cmd: '/bin/bash', args: ['-l', '-c', 'echo hi; exit 2'], envs: { A: 'b' } }, stdin: false }));
    const res = await fetch(`${url}/process.Process/Start`, { method: 'POST', headers: { 'content-type': 'application/connect+json', 'connect-timeout-ms': '60000' }, body });
    assert.equal(res.status, 200);
    const frames = decodeEnvelopes(Buffer.from(await res.arrayBuffer()));
    const msgs = frames.map((f) => JSON.parse(f.body.toString()) as unknown);
    assert.deepEqual(msgs, [
      { event: { start: { pid: 7 } } },
      { event: { data: { stdout: Buffer.from('hi\n').toString('base64') } } },
      { event: { end: { exitCode: 2, error: 'exit status 2', exited: true, status: 'exit status 2' } } },
      {},
    ]);
    assert.equal(frames.at(-1)?.flags, END_STREAM_FLAG);
    assert.deepEqual(started[0], { argv: ['/bin/bash', '-l', '-c', 'echo hi; exit 2'], timeoutMs: 60_000, env: { FROM_CREATE: '1', A: 'b' }, cwd: '/home/user', user: 'user', stdin: false });
  });
});

test('unary calls: List answers JSON (running processes, not the watchers behind WatchDir); a missing process is 404 not_found; a wrong content type is 415; unknown paths 404', async () => {
  const { manager } = fakeManager();
  await withServer(manager, async (url) => {
    const post = (path: string, body: unknown, ct = 'application/json') => fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': ct }, body: JSON.stringify(body) });
    const list = await post('/process.Process/List', {});
    assert.equal(list.status, 200);
    assert.deepEqual(await list.json(), { processes: [{ config: { cmd: '/bin/bash', args: ['-c', 'x'], envs: {}, cwd: '/home/user' }, pid: 7 }] });
    const kill = await post('/process.Process/SendSignal', { process: { pid: 9 }, signal: 'SIGNAL_SIGKILL' });
    assert.equal(kill.status, 404);
    assert.deepEqual(await kill.json(), { code: 'not_found', message: 'process with pid 9 not found' });
    assert.equal((await post('/process.Process/List', {}, 'application/proto')).status, 415);
    assert.equal((await post('/nope.Service/Method', {})).status, 404);
    const streamIn = await post('/process.Process/StreamInput', {});
    assert.equal(streamIn.status, 501);
    assert.equal(((await streamIn.json()) as { code: string }).code, 'unimplemented');
  });
});

test('a streaming call that fails still answers 200 with the error in the end-stream frame', async () => {
  const { manager } = fakeManager();
  await withServer(manager, async (url) => {
    const res = await fetch(`${url}/process.Process/Start`, { method: 'POST', headers: { 'content-type': 'application/connect+json' }, body: encodeEnvelope(0, '{"process":{}}') });
    assert.equal(res.status, 200);
    const frames = decodeEnvelopes(Buffer.from(await res.arrayBuffer()));
    assert.equal(frames.length, 1);
    assert.equal(frames[0]?.flags, END_STREAM_FLAG);
    assert.deepEqual(JSON.parse(frames[0]?.body.toString() ?? ''), { error: { code: 'invalid_argument', message: 'process.cmd is required' } });
  });
});

test('/health: 204 while the agent serves, 502 in E2B\'s proxy shape when it does not', async () => {
  await withServer(fakeManager().manager, async (url) => {
    assert.equal((await fetch(`${url}/health`)).status, 204);
  });
  await withServer(fakeManager({ down: true }).manager, async (url) => {
    const res = await fetch(`${url}/health`);
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as { code: number }).code, 502);
  });
});

test('process starts and signals are audited as kiln\'s own process routes record them', async () => {
  const { manager } = fakeManager();
  const records: Array<{ type: string; data: Record<string, unknown> }> = [];
  const audit: AuditSink = { append: async (r) => void records.push(r as (typeof records)[number]) };
  await withServer(
    manager,
    async (url) => {
      const body = encodeEnvelope(0, JSON.stringify({ process: { cmd: '/bin/true', envs: { K: 'v' } } }));
      await (await fetch(`${url}/process.Process/Start`, { method: 'POST', headers: { 'content-type': 'application/connect+json' }, body })).arrayBuffer();
      await fetch(`${url}/process.Process/SendSignal`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ process: { pid: 9 }, signal: 'SIGNAL_SIGTERM' }) });
    },
    audit,
  );
  assert.deepEqual(records, [
    { type: 'process', sandboxId: 'sb-x', data: { op: 'start', pid: 7, argv: ['/bin/true'], cwd: '/home/user', user: 'user', tag: null, envKeys: ['K'], pty: false } },
    { type: 'process', sandboxId: 'sb-x', data: { op: 'signal', pid: 9, signal: 'SIGTERM', errorCode: 'NOT_FOUND' } },
  ]);
});

test('a call keeps the sandbox from auto-pausing while it lasts (manager.hold), and lets go when it ends', async () => {
  const { manager, holds } = fakeManager();
  await withServer(manager, async (url) => {
    const body = encodeEnvelope(0, JSON.stringify({ process: { cmd: '/bin/true' } }));
    await (await fetch(`${url}/process.Process/Start`, { method: 'POST', headers: { 'content-type': 'application/connect+json' }, body })).arrayBuffer();
    await (await fetch(`${url}/process.Process/List`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).arrayBuffer();
  });
  assert.equal(holds.taken, 2);
  await new Promise((r) => setTimeout(r, 50)); // 'close' follows the last byte
  assert.equal(holds.open, 0);
});
