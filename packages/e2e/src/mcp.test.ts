/**
 * kiln's MCP server with real VMs (issue 16), driven by the official MCP SDK's Client: over
 * stdio (spawning `kiln mcp` against a test kilnd) and over streamable HTTP (kilnd's /mcp on its
 * TCP listener, with a tenant's API key). Each lists the tools, creates a sandbox, runs
 * `uname -a` (output arrives as progress notifications), writes and reads back a file, and
 * destroys it; a bad argument is a tool error naming the argument; another tenant's sandbox is
 * "not found"; sandboxes a session created are destroyed when it ends, unless kept.
 */
import { after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { CLI, DaemonFixture, integrationSkipReason } from './harness.js';
import { waitFor } from './lifecycle-leftovers.js';

const skip = integrationSkipReason();
const TOOLS = ['sandbox_create', 'sandbox_list', 'run_command', 'process_start', 'process_list', 'process_output', 'process_kill', 'file_read', 'file_write', 'file_list', 'port_expose', 'network_policy_set', 'sandbox_snapshot', 'sandbox_destroy'];

const text = (r: CallToolResult): string => r.content.map((c) => (c.type === 'text' ? c.text : '')).join('');

async function call(client: Client, name: string, args: Record<string, unknown>, onprogress?: (p: { progress: number; message?: string }) => void): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args }, undefined, onprogress ? { onprogress, timeout: 300_000 } : { timeout: 300_000 })) as CallToolResult;
}

/** GET a proxy URL on 127.0.0.1 with its Host header (no DNS needed for *.localhost names). */
function getVia127(u: URL): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: Number(u.port), path: u.pathname + u.search, headers: { host: u.host } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(res.statusCode === 200 ? Buffer.concat(chunks).toString() : `status ${res.statusCode}`));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The walk-through both transports share; returns the id of a sandbox created with keep: true. */
async function walkThrough(client: Client, fx: DaemonFixture, label: string): Promise<{ kept: string; dropped: string }> {
  const tools = (await client.listTools()).tools;
  assert.deepEqual(tools.map((t) => t.name).sort(), [...TOOLS].sort());
  for (const t of tools) {
    assert.ok((t.description ?? '').length > 20, `${t.name} has a description`);
    assert.equal(t.inputSchema.type, 'object');
  }
  assert.ok(tools.find((t) => t.name === 'run_command')?.inputSchema.required?.includes('sandboxId'));

  const created = await call(client, 'sandbox_create', { timeoutSeconds: 600 });
  assert.ok(!created.isError, text(created));
  const id = (created.structuredContent as { sandboxId: string }).sandboxId;
  assert.match(id, /^sb-[0-9a-f]{32}$/);
  assert.equal((await fx.client.get(id)).spec.labels['mcp-session']?.startsWith('mcp-'), true, 'labelled with its session');

  const chunks: string[] = [];
  const uname = await call(client, 'run_command', { sandboxId: id, command: 'uname -a; echo to-stderr >&2' }, (p) => chunks.push(p.message ?? ''));
  assert.ok(!uname.isError, text(uname));
  const u = uname.structuredContent as { exitCode: number; stdout: string; stderr: string; stdoutTruncated: boolean };
  assert.equal(u.exitCode, 0);
  assert.match(u.stdout, /^Linux \S+ /);
  assert.equal(u.stderr.trim(), 'to-stderr');
  assert.equal(u.stdoutTruncated, false);
  assert.match(chunks.join(''), /Linux/, 'output came as progress notifications');
  process.stderr.write(`# ${label}: uname -a → ${u.stdout.trim()} (${chunks.length} progress notifications)\n`);

  const big = await call(client, 'run_command', { sandboxId: id, command: 'head -c 100000 /dev/zero | tr "\\0" x; exit 3' });
  const b = big.structuredContent as { exitCode: number; stdout: string; stdoutTruncated: boolean };
  assert.equal(b.exitCode, 3);
  assert.equal(b.stdoutTruncated, true);
  assert.match(text(big), /exit code 3[\s\S]*stdout \(truncated\)[\s\S]*earlier characters omitted/);

  const w = await call(client, 'file_write', { sandboxId: id, path: '/root/mcp/hello.txt', content: `hello from ${label}\n` });
  assert.ok(!w.isError, text(w));
  const r = await call(client, 'file_read', { sandboxId: id, path: '/root/mcp/hello.txt' });
  assert.equal((r.structuredContent as { content: string }).content, `hello from ${label}\n`);
  const ls = await call(client, 'file_list', { sandboxId: id, path: '/root/mcp' });
  assert.match(text(ls), /hello\.txt/);

  const started = await call(client, 'process_start', { sandboxId: id, command: 'echo bg-out; sleep 600' });
  const pid = (started.structuredContent as { pid: number }).pid;
  await waitFor('process output', async () => /bg-out/.test(text(await call(client, 'process_output', { sandboxId: id, pid }))), 60_000);
  assert.match(text(await call(client, 'process_list', { sandboxId: id })), new RegExp(`${pid} running`));
  assert.ok(!(await call(client, 'process_kill', { sandboxId: id, pid })).isError);

  // A server in the sandbox, exposed with port_expose: its URL answers through kilnd's proxy.
  await call(client, 'process_start', { sandboxId: id, command: `/opt/kiln/bin/node -e "require('http').createServer((q,s)=>s.end('mcp-port-ok')).listen(8000,'127.0.0.1')"` });
  const exposed = await call(client, 'port_expose', { sandboxId: id, port: 8000, public: true });
  assert.ok(!exposed.isError, text(exposed));
  const portUrl = new URL((exposed.structuredContent as { url: string }).url);
  assert.match(portUrl.hostname, new RegExp(`^8000-${id}\\.localhost$`));
  let body = '';
  await waitFor('the exposed port answers', async () => {
    body = await getVia127(portUrl).catch(() => '');
    return body === 'mcp-port-ok';
  }, 60_000);
  const badPort = await call(client, 'port_expose', { sandboxId: id, port: 70000 });
  assert.equal(badPort.isError, true);
  assert.match(text(badPort), /port/);

  // A bad argument: a tool error that names it.
  const bad = await call(client, 'run_command', { sandboxId: id, command: 42 });
  assert.equal(bad.isError, true);
  assert.match(text(bad), /command/);
  const badPath = await call(client, 'file_read', { sandboxId: id, path: 'relative/path' });
  assert.equal(badPath.isError, true);
  assert.match(text(badPath), /path/);

  const destroyed = await call(client, 'sandbox_destroy', { sandboxId: id });
  assert.ok(!destroyed.isError, text(destroyed));
  await assert.rejects(fx.client.get(id), (e: { code?: string }) => e.code === 'SANDBOX_NOT_FOUND');

  // For the session-end check: one kept, one not.
  const kept = (await call(client, 'sandbox_create', { keep: true })).structuredContent as { sandboxId: string };
  const dropped = (await call(client, 'sandbox_create', {})).structuredContent as { sandboxId: string };
  return { kept: kept.sandboxId, dropped: dropped.sandboxId };
}

describe('MCP server: kiln mcp (stdio) and /mcp (streamable HTTP)', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('mcp');
  // Every client is closed at the end whatever failed: an open one keeps the process alive.
  const clients: Client[] = [];
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await fx.close();
  });

  fx.test('over stdio and over HTTP: tools, create, uname -a, files, processes, bad arguments, tenancy, session end', async () => {
    await fx.start({ KILN_LISTEN: '127.0.0.1:0', KILN_PROXY_LISTEN: '127.0.0.1:0' });
    const line = readFileSync(fx.logPath, 'utf8').split('\n').find((l) => l.includes('"kilnd listening"'));
    const port = (JSON.parse(line ?? '{}') as { tcp?: { port: number } }).tcp?.port;
    assert.ok(port, 'kilnd listens on TCP');
    const keyOf = async (tenant: string) => (await fx.client.call<{ key: string }>('POST', '/v1/keys', { tenant })).key;
    const alice = await keyOf('alice');
    const bob = await keyOf('bob');

    // stdio: `kiln mcp` as an MCP client configuration would start it (over the admin socket).
    const stdio = new Client({ name: 'kiln-e2e', version: '0' });
    clients.push(stdio);
    const stdioTransport = new StdioClientTransport({ command: process.execPath, args: [CLI, '--socket', fx.socket, 'mcp'], env: { PATH: process.env.PATH ?? '' }, stderr: 'pipe' });
    await stdio.connect(stdioTransport);
    // Closed whatever happens: a live `kiln mcp` child would keep the test process from exiting.
    let s1: { kept: string; dropped: string };
    try {
      s1 = await walkThrough(stdio, fx, 'stdio');
    } finally {
      await stdio.close();
    }
    await waitFor('stdio session end', async () => (await fx.client.list()).every((s) => s.id !== s1.dropped), 60_000);
    assert.equal((await fx.client.get(s1.kept)).state, 'running', 'kept: true survives the session');
    await fx.client.destroy(s1.kept);

    // HTTP: alice's key.
    const url = new URL(`http://127.0.0.1:${port}/mcp`);
    const http = new Client({ name: 'kiln-e2e', version: '0' });
    clients.push(http);
    const httpTransport = new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${alice}` } } });
    await http.connect(httpTransport);
    const s2 = await walkThrough(http, fx, 'http');

    // Bob's MCP session cannot see alice's sandbox: "not found", like an id that never existed.
    const bobClient = new Client({ name: 'kiln-e2e-bob', version: '0' });
    clients.push(bobClient);
    await bobClient.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${bob}` } } }));
    const foreign = await call(bobClient, 'run_command', { sandboxId: s2.kept, command: 'true' });
    assert.equal(foreign.isError, true);
    assert.match(text(foreign), /SANDBOX_NOT_FOUND: .*not found/);
    assert.match(text(await call(bobClient, 'sandbox_list', {})), /no sandboxes/);
    await bobClient.close();
    // Alice's session id with bob's key: 404.
    const hijack = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${bob}`, 'mcp-session-id': httpTransport.sessionId ?? '', 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }) });
    assert.equal(hijack.status, 404);
    // No key: 401.
    assert.equal((await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 401);

    await httpTransport.terminateSession();
    await http.close();
    await waitFor('http session end', async () => (await fx.client.list()).every((s) => s.id !== s2.dropped), 60_000);
    assert.equal((await fx.client.get(s2.kept)).state, 'running');
    await fx.client.destroy(s2.kept);
  });
});
