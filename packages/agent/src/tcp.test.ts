import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import type { AgentClient } from '@kiln/protocol';
import { hasCode, startAgent, type TestAgent } from './test-agent.js';

let agent: TestAgent;
let client: AgentClient;
before(async () => {
  agent = await startAgent();
  client = await agent.connect();
});
after(async () => {
  client?.close();
  await agent?.stop();
});

async function listen(onConn: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(onConn);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as { port: number }).port };
}

test('tcp.connect carries bytes both ways, half-close included, and counts them', async () => {
  const { server, port } = await listen((s) => {
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    s.on('end', () => s.end(`echo:${Buffer.concat(got).toString()}`));
  });
  try {
    const out: Buffer[] = [];
    let ended = false;
    const h = client.tcpConnect(port, { onData: (b) => void out.push(b), onEnd: () => (ended = true) });
    await h.write(Buffer.from('hello '));
    await h.write(Buffer.from('guest'));
    h.end();
    assert.deepEqual(await h.result, { bytesIn: 11, bytesOut: 16 });
    assert.equal(Buffer.concat(out).toString(), 'echo:hello guest');
    assert.equal(ended, true);
  } finally {
    server.close();
  }
});

test('nothing listening: CONNECTION_REFUSED', async () => {
  const { server, port } = await listen(() => undefined);
  await new Promise((r) => server.close(r));
  await assert.rejects(client.tcpConnect(port, { onData: () => undefined }).result, hasCode('CONNECTION_REFUSED'));
});

test('a host that does not take the bytes stops the guest-side writer (bounded, no buffering); close() ends it', async () => {
  let writer: Socket | null = null;
  let written = 0;
  const chunk = Buffer.alloc(64 * 1024, 1);
  const { server, port } = await listen((s) => {
    writer = s;
    s.on('error', () => undefined);
    const pump = () => {
      while (written < 256 * 1024 * 1024) {
        written += chunk.length;
        if (!s.write(chunk)) return void s.once('drain', pump);
      }
    };
    pump();
  });
  try {
    let release!: () => void;
    const stalled = new Promise<void>((r) => (release = r));
    let received = 0;
    const h = client.tcpConnect(port, {
      onData: (b) => {
        received += b.length;
        return stalled;
      },
    });
    // Let the writer run into the wall.
    let last = -1;
    while (written !== last) {
      last = written;
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.ok(written < 32 * 1024 * 1024, `the guest-side writer got ${written} bytes out past a stalled host`);
    assert.ok(received <= 2 * 1024 * 1024, `the host was handed ${received} bytes it never acked`);
    h.close();
    await assert.rejects(h.result, hasCode('CANCELLED'));
    release();
    await new Promise<void>((r) => (writer as unknown as Socket).once('close', () => r()));
  } finally {
    server.close();
  }
});
