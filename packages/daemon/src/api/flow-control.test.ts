// Flow control end to end, in process: a real AgentClient talks to a fake agent that writes
// as fast as its credit allows; the HTTP client reads nothing. The agent must run out of
// credit (kilnd acks only what the response took), and everything arrives once the client reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Fastify from 'fastify';
import type { SandboxManager } from '../sandbox/manager.js';
import { registerExecRoutes } from './routes/exec.js';
import { registerFileRoutes } from './routes/files.js';
import { streamingAgent, settled, type StreamingAgent } from '../testing/streaming-agent.js';
import { listenUnix, readAll } from '../testing/stalled-client.js';

const TOTAL = 48 * 1024 * 1024;
const SB = 'sb-000000000001';

async function serve(agent: StreamingAgent) {
  const app = Fastify();
  const rec = { spec: { env: {} } };
  const manager = { useAgent: async () => ({ agent: agent.client, rec, release: () => undefined }), get: () => rec, hold: () => () => undefined } as unknown as SandboxManager;
  registerExecRoutes(app, manager);
  registerFileRoutes(app, manager);
  const srv = await listenUnix(app);
  return {
    stalled: srv.stalled,
    close: async () => {
      agent.close();
      await srv.close();
    },
  };
}

/** Waits until the agent is out of credit and stays so, or has sent everything. */
async function untilStalledOrDone(agent: StreamingAgent): Promise<void> {
  let last = -1;
  await settled(() => {
    const stable = agent.sentBytes === last;
    last = agent.sentBytes;
    return agent.sentBytes >= TOTAL || (agent.blocked && stable);
  });
}

test('exec: a client that reads nothing stops the guest’s credit; reading again gets every byte', async () => {
  const agent = streamingAgent(TOTAL);
  const srv = await serve(agent);
  try {
    const res = await srv.stalled('POST', `/v1/sandboxes/${SB}/exec`, { argv: ['cat', '/dev/zero'] });
    assert.equal(res.statusCode, 200);
    await untilStalledOrDone(agent);
    assert.ok(agent.blocked, 'the agent is waiting for credit');
    assert.ok(agent.sentBytes < 8 * 1024 * 1024, `kilnd took ${agent.sentBytes} bytes from the agent for a client that read nothing`);
    const lines = (await readAll(res)).toString().trim().split('\n').map((l) => JSON.parse(l) as { type: string; data?: string });
    const out = lines.filter((l) => l.type === 'stdout').reduce((n, l) => n + Buffer.from(l.data ?? '', 'base64').length, 0);
    assert.equal(out, TOTAL);
    assert.equal(lines.at(-1)?.type, 'exit');
    // A client that leaves while stalled: the command is killed (the agent stops waiting for credit).
    const left = await srv.stalled('POST', `/v1/sandboxes/${SB}/exec`, { argv: ['cat', '/dev/zero'] });
    await settled(() => agent.blocked);
    left.destroy();
    await settled(() => !agent.blocked);
  } finally {
    await srv.close();
  }
});

test('file download: a client that reads nothing stops the guest’s credit; reading again gets the file', async () => {
  const agent = streamingAgent(TOTAL);
  const srv = await serve(agent);
  try {
    const res = await srv.stalled('GET', `/v1/sandboxes/${SB}/files?path=/big`);
    assert.equal(res.statusCode, 200);
    await untilStalledOrDone(agent);
    assert.ok(agent.blocked, 'the agent is waiting for credit');
    assert.ok(agent.sentBytes < 8 * 1024 * 1024, `kilnd took ${agent.sentBytes} bytes from the agent for a client that read nothing`);
    const body = await readAll(res);
    assert.equal(body.length, TOTAL);
    // A client that leaves mid-download cancels the read in the guest.
    const left = await srv.stalled('GET', `/v1/sandboxes/${SB}/files?path=/big`);
    await settled(() => agent.blocked);
    left.destroy();
    await settled(() => !agent.blocked);
  } finally {
    await srv.close();
  }
});
