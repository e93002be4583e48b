/**
 * The routes that reach into the guest, end to end through kilnd's API to the real agent (run on
 * the host over a unix socket, testing/real-agent.ts): file stat/list/mkdir/remove and an exec's
 * signal. sandbox.test (e2e) checks the same against a real VM.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

const q = (p: string) => encodeURIComponent(p);
const call = async (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: object) => {
  const res = await h.app.inject({ method, url: `/v1/sandboxes/${id}${url}`, ...(payload ? { payload } : {}) });
  return { status: res.statusCode, json: res.json() as Record<string, unknown> & { error?: { code: string; message: string } } };
};

test('files: mkdir, stat, list and remove act on the guest and answer with kiln codes', async () => {
  const top = join(agent.dir, 'work');
  const deep = join(top, 'a', 'b');
  // mkdir without recursive needs the parent; with it, makes the chain.
  assert.equal((await call('POST', '/files/mkdir', { path: deep })).json.error?.code, 'GUEST_NOT_FOUND');
  assert.deepEqual((await call('POST', '/files/mkdir', { path: deep, recursive: true })).json, { ok: true });
  assert.ok(existsSync(deep));
  assert.equal((await call('POST', '/files/mkdir', { path: deep })).status, 409, 'mkdir of an existing directory');
  writeFileSync(join(top, 'a', 'hello.txt'), 'hello world\n');

  const st = await call('GET', `/files/stat?path=${q(join(top, 'a', 'hello.txt'))}`);
  assert.equal(st.status, 200);
  assert.equal(st.json.type, 'file');
  assert.equal(st.json.size, 12);
  assert.equal((await call('GET', `/files/stat?path=${q(deep)}`)).json.type, 'dir');
  const missing = await call('GET', `/files/stat?path=${q(join(top, 'nope'))}`);
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error?.code, 'GUEST_NOT_FOUND');

  const ls = await call('GET', `/files/list?path=${q(join(top, 'a'))}`);
  assert.equal(ls.status, 200);
  const entries = (ls.json as unknown as Array<{ name: string; type: string }>).map((e) => `${e.name}:${e.type}`).sort();
  assert.deepEqual(entries, ['b:dir', 'hello.txt:file']);
  assert.equal((await call('GET', `/files/list?path=${q(join(top, 'a', 'hello.txt'))}`)).json.error?.code, 'GUEST_NOT_DIRECTORY');

  // A non-empty directory needs recursive; a file goes without.
  const notEmpty = await call('DELETE', `/files?path=${q(top)}`);
  assert.equal(notEmpty.status, 409);
  assert.equal(notEmpty.json.error?.code, 'GUEST_EXISTS');
  assert.deepEqual((await call('DELETE', `/files?path=${q(join(top, 'a', 'hello.txt'))}`)).json, { ok: true });
  assert.equal(existsSync(join(top, 'a', 'hello.txt')), false);
  assert.deepEqual((await call('DELETE', `/files?path=${q(top)}&recursive=true`)).json, { ok: true });
  assert.equal(existsSync(top), false);

  // Relative paths never reach the guest.
  assert.equal((await call('GET', '/files/stat?path=etc/passwd')).json.error?.code, 'INVALID_ARGUMENT');
});

test('exec signal: reaches the running process group; unknown execs and bad signals are refused', async () => {
  const res = await fetch(`${base}/v1/sandboxes/${id}/exec`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ shell: 'trap "echo got-term; exit 7" TERM; echo ready; while :; do sleep 0.05; done' }),
  });
  assert.equal(res.status, 200);
  const events: Array<Record<string, unknown>> = [];
  let stdout = '';
  let pending = '';
  const decoder = new TextDecoder();
  let signalled = false;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const ev = JSON.parse(pending.slice(0, nl)) as Record<string, unknown>;
      pending = pending.slice(nl + 1);
      events.push(ev);
      if (ev.type === 'stdout') stdout += Buffer.from(String(ev.data), 'base64').toString();
      if (!signalled && stdout.includes('ready')) {
        signalled = true;
        const execId = String(events.find((e) => e.type === 'started')?.execId);
        assert.equal((await call('POST', `/execs/${execId}/signal`, { signal: 'TERM' })).json.error?.code, 'INVALID_ARGUMENT', 'not a signal name');
        assert.equal((await call('POST', `/execs/${execId}/signal`, { signal: 'SIGNOSUCH' })).json.error?.code, 'GUEST_INVALID_ARGUMENT');
        assert.deepEqual((await call('POST', `/execs/${execId}/signal`, { signal: 'SIGTERM' })).json, { ok: true });
      }
    }
  }
  assert.ok(signalled, `never saw "ready": ${JSON.stringify(events)}`);
  assert.match(stdout, /got-term/);
  const exit = events.find((e) => e.type === 'exit');
  assert.equal(exit?.exitCode, 7, JSON.stringify(events));
  const gone = await call('POST', `/execs/${id}.999/signal`, { signal: 'SIGTERM' });
  assert.equal(gone.status, 404);
  assert.equal(gone.json.error?.code, 'EXEC_NOT_FOUND');
});
