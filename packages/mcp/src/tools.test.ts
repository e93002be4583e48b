// The MCP server in process (the SDK's in-memory transport) over a fake kiln: tool schemas, a
// bad argument named in the tool error, kilnd's errors as "CODE: message", truncation markers,
// and the session's sandboxes destroyed at its end unless kept. (With real VMs: e2e mcp.test.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Kiln } from '@kiln/sdk';
import { createKilnMcpServer } from './server.js';
import { truncate } from './tools.js';

function fakeKiln() {
  const killed: string[] = [];
  const created: Array<Record<string, unknown>> = [];
  let n = 0;
  const handle = (id: string) => ({
    id,
    info: { id, state: 'running' },
    kill: async () => void killed.push(id),
    exec: async () => ({ exitCode: 0, signal: null, timedOut: false, durationMs: 1, stdout: 'x'.repeat(40_000), stderr: '' }),
  });
  const kiln = {
    sandboxes: {
      create: async (o: Record<string, unknown>) => {
        created.push(o);
        return handle(`sb-${String(++n).padStart(32, '0')}`);
      },
      connect: async (id: string) => {
        if (!id.startsWith('sb-')) throw Object.assign(new Error(`sandbox ${id} not found`), { code: 'SANDBOX_NOT_FOUND' });
        return handle(id);
      },
      list: async () => [],
    },
  } as unknown as Kiln;
  return { kiln, killed, created };
}

async function connect(kiln: Kiln) {
  const mcp = createKilnMcpServer(kiln);
  const [a, b] = InMemoryTransport.createLinkedPair();
  await mcp.server.connect(a);
  const client = new Client({ name: 't', version: '0' });
  await client.connect(b);
  const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult;
  const text = (r: CallToolResult) => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');
  return { mcp, client, call, text };
}

test('mcp: every tool has a description and an object schema; a bad argument is a tool error naming it', async () => {
  const { kiln } = fakeKiln();
  const { client, call, text } = await connect(kiln);
  const tools = (await client.listTools()).tools;
  assert.ok(tools.length >= 14);
  for (const t of tools) assert.ok((t.description ?? '').length > 20 && t.inputSchema.type === 'object', t.name);
  const bad = await call('run_command', { sandboxId: 'sb-1' });
  assert.equal(bad.isError, true);
  assert.match(text(bad), /command/);
  const badPort = await call('port_expose', { sandboxId: 'sb-1', port: 70000 });
  assert.equal(badPort.isError, true);
  assert.match(text(badPort), /port/);
  const missing = await call('file_read', { sandboxId: 'nope', path: '/etc/hostname' });
  assert.equal(missing.isError, true);
  assert.equal(text(missing), 'SANDBOX_NOT_FOUND: sandbox nope not found');
});

test('mcp: run_command cuts long output to its tail with a marker', async () => {
  const { kiln } = fakeKiln();
  const { call, text } = await connect(kiln);
  const r = await call('run_command', { sandboxId: 'sb-1', command: 'yes' });
  assert.equal((r.structuredContent as { stdoutTruncated: boolean }).stdoutTruncated, true);
  assert.match(text(r), /exit code 0[\s\S]*stdout \(truncated\)[\s\S]*7232 earlier characters omitted/);
  assert.deepEqual(truncate('abc', 5), { text: 'abc', truncated: false, omittedChars: 0 });
});

test('mcp: a session labels what it creates and destroys it at its end, except what it keeps', async () => {
  const { kiln, killed, created } = fakeKiln();
  const { mcp, call } = await connect(kiln);
  const a = (await call('sandbox_create', {})).structuredContent as { sandboxId: string };
  const b = (await call('sandbox_create', { keep: true })).structuredContent as { sandboxId: string };
  const c = (await call('sandbox_create', { policy: 'locked', allowDomains: ['pypi.org'], timeoutSeconds: 60 })).structuredContent as { sandboxId: string };
  assert.deepEqual((created[0]?.labels as Record<string, string>)['mcp-session'], mcp.session.id);
  assert.deepEqual(created[2], { timeoutMs: 60_000, network: { preset: 'locked', allow: [{ domain: 'pypi.org' }] }, labels: { 'mcp-session': mcp.session.id } });
  await call('sandbox_destroy', { sandboxId: c.sandboxId });
  assert.deepEqual(await mcp.close(), [a.sandboxId]);
  assert.deepEqual(killed.sort(), [a.sandboxId, c.sandboxId].sort());
  assert.ok(!killed.includes(b.sandboxId));
});
