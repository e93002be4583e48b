import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { FrameDecoder, encodeFrame, type Frame } from '@kiln/protocol';
import { alive, hasCode, startAgent, type TestAgent } from './test-agent.js';

let agent: TestAgent;
before(async () => {
  agent = await startAgent();
});
after(async () => {
  await agent?.stop();
});

/** Sends raw bytes on a fresh connection; returns the frames the agent sent back before it closed. */
async function rawExchange(bytes: Buffer): Promise<Frame[]> {
  const socket = connect(agent.socket);
  await once(socket, 'connect');
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  socket.on('data', (c: Buffer) => frames.push(...decoder.push(c)));
  socket.write(bytes);
  await once(socket, 'close');
  return frames;
}

test('a malformed frame drops that connection only; the agent lives and the next connection works', async () => {
  const garbage = [
    Buffer.from('GET / HTTP/1.1\r\n\r\n'),
    Buffer.from([0, 0, 0, 2, 0, 0, 0, 0]),
    encodeFrame({ k: 'req', id: 'x', op: 'health', args: {} }),
    encodeFrame({ k: 'res', id: 1, ok: true, result: {} }),
    Buffer.concat([Buffer.from([0, 0, 0, 9, 0, 0, 0, 5]), Buffer.from('{oops')]),
  ];
  for (const g of garbage) {
    const frames = await rawExchange(g);
    assert.equal(frames.length, 1, `reply to ${g.toString('hex').slice(0, 40)}`);
    assert.equal(frames[0]?.header.k, 'res');
    assert.equal(frames[0]?.header.id, 0);
    assert.equal(frames[0]?.header.ok, false);
  }
  assert.equal(agent.proc.exitCode, null);
  const client = await agent.connect();
  assert.equal((await client.health()).memTotalKiB > 0, true);
  client.close();
});

test('bad requests get error replies and the connection stays up', async () => {
  const client = await agent.connect();
  const raw = client as unknown as { request(op: string, args: unknown): { result: Promise<unknown> } };
  await assert.rejects(raw.request('no.such.op', {}).result, hasCode('UNKNOWN_OP'));
  await assert.rejects(raw.request('file.stat', { path: 5 }).result, hasCode('INVALID_ARGUMENT'));
  await assert.rejects(raw.request('hello', { protocolVersion: 2 }).result, hasCode('VERSION_MISMATCH'));
  await assert.rejects(raw.request('exec', null).result, hasCode('INVALID_ARGUMENT'));
  assert.equal(typeof (await client.health()).uptimeMs, 'number');
  client.close();
});

test('execs of a dropped session are killed', async () => {
  const client = await agent.connect();
  let pid = 0;
  const h = client.exec({ shell: 'echo $$; exec sleep 30' }, { onStdout: (b) => void (pid = Number(b.toString().trim())) });
  while (!pid) await new Promise((r) => setTimeout(r, 10));
  assert.equal(alive(pid), true);
  client.close();
  await assert.rejects(h.result, hasCode('CHANNEL_CLOSED'));
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(alive(pid), false, `exec ${pid} survived its session`);
});

test('docker.ready waits for /_ping and times out without dockerd; health reports it', async () => {
  const client = await agent.connect();
  const t0 = Date.now();
  await assert.rejects(client.dockerReady(300), hasCode('TIMEOUT'));
  assert.ok(Date.now() - t0 >= 250);
  assert.equal((await client.health()).dockerReady, false);

  const docker = createServer((req, res) => {
    res.statusCode = req.url === '/_ping' ? 200 : 404;
    res.end('OK');
  });
  setTimeout(() => docker.listen(join(agent.dir, 'docker.sock')), 400);
  const { waitedMs } = await client.dockerReady(5000);
  assert.ok(waitedMs >= 300 && waitedMs < 3000, `waited ${waitedMs} ms`);
  assert.equal((await client.health()).dockerReady, true);
  docker.close();
  client.close();
});

test('sys.configure writes hostname, machine-id and entropy under its root', async (t) => {
  // Never touch the test machine's real clock, hostname or machine-id: use a second agent with a fake root.
  const sysAgent = await startAgentWithRoot();
  t.after(() => sysAgent.stop());
  const client = await sysAgent.agent.connect();
  await client.configure({ hostname: 'clone-7', machineId: 'ab'.repeat(16), entropyHex: 'deadbeef' });
  const r = sysAgent.root;
  assert.equal(readFileSync(join(r, 'proc/sys/kernel/hostname'), 'utf8'), 'clone-7');
  assert.equal(readFileSync(join(r, 'etc/hostname'), 'utf8'), 'clone-7\n');
  assert.match(readFileSync(join(r, 'etc/hosts'), 'utf8'), /^127\.0\.1\.1\tclone-7$/m);
  assert.equal(readFileSync(join(r, 'etc/machine-id'), 'utf8'), `${'ab'.repeat(16)}\n`);
  assert.deepEqual(readFileSync(join(r, 'dev/urandom')), Buffer.from('deadbeef', 'hex'));
  await assert.rejects(client.configure({ hostname: '-bad-' }), hasCode('INVALID_ARGUMENT'));
  client.close();
});

async function startAgentWithRoot() {
  const root = mkdtempSync(join(tmpdir(), 'kiln-sysroot-'));
  mkdirSync(join(root, 'proc/sys/kernel'), { recursive: true });
  mkdirSync(join(root, 'etc'));
  mkdirSync(join(root, 'dev'));
  writeFileSync(join(root, 'dev/urandom'), '');
  const a = await startAgent(['--sys-root', root]);
  return {
    agent: a,
    root,
    stop: async () => {
      await a.stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

test('stopping the agent kills the commands it started', async () => {
  const other = await startAgent();
  try {
    const client = await other.connect();
    let pid = 0;
    void client.exec({ shell: 'echo $$; exec sleep 30' }, { onStdout: (b) => void (pid = Number(b.toString().trim())) }).result;
    while (!pid) await new Promise((r) => setTimeout(r, 10));
    other.proc.kill('SIGTERM');
    await once(other.proc, 'exit');
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(pid), false, `command ${pid} outlived the agent`);
    client.close();
  } finally {
    await other.stop();
  }
});
