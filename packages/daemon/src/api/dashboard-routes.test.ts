/**
 * What the web dashboard needs from kilnd, on a real TCP listener (fake VMs, the real guest
 * agent as a host process for the terminal): its static files at /ui without a key (only the
 * built files, with a strict CSP); an `admin`-scoped key that acts as the admin (sees every
 * tenant's sandboxes; audited with its key id); the API key offered as a WebSocket
 * subprotocol (`kiln.key.<key>`, as a browser must) on the PTY route, answered with `kiln.v1`
 * and never with the key; and the admin-only doctor route.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { tenancyHarness } from '../testing/tenancy-harness.js';
import { startRealAgent, type RealAgent } from '../testing/real-agent.js';

const uiDir = mkdtempSync(join(tmpdir(), 'kiln-unit-ui-'));
writeFileSync(join(uiDir, 'index.html'), '<!doctype html><title>kiln</title>');
writeFileSync(join(uiDir, 'app.js'), 'console.log(1)');
writeFileSync(join(uiDir, 'secret.txt'), 'not a dashboard file');
process.env.KILN_UI_DIR = uiDir;

let agent: RealAgent;
let h: Awaited<ReturnType<typeof tenancyHarness>>;
before(async () => {
  agent = await startRealAgent();
  h = await tenancyHarness({ connectAgent: agent.connectAgent });
});
after(async () => {
  await h?.close();
  await agent?.stop();
  rmSync(uiDir, { recursive: true, force: true });
});

/** A GET with the path sent exactly as written (fetch would normalise `..`). */
const rawGet = (path: string): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: h.tcp.address.port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });

test('/ui: the built files are served without a key, with a CSP; nothing else is', async () => {
  const root = await h.fetch('/ui', { redirect: 'manual' });
  assert.equal(root.status, 302);
  assert.equal(root.headers.get('location'), '/ui/');
  const page = await h.fetch('/ui/');
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'; script-src 'self';/);
  assert.equal(page.headers.get('x-frame-options'), 'DENY');
  assert.match(await page.text(), /<title>kiln<\/title>/);
  const js = await h.fetch('/ui/app.js');
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
  for (const p of ['/ui/secret.txt', '/ui/nope.js', '/ui/../kiln.db', '/ui/%2e%2e/kiln.db', '/ui/..%2fkiln.db']) {
    const r = await rawGet(p);
    assert.ok(r.status === 404, `${p}: ${r.status} ${r.body}`);
    assert.doesNotMatch(r.body, /not a dashboard file|SQLite/, p);
  }
  // The rest of the API still wants a key.
  assert.equal((await h.fetch('/v1/sandboxes')).status, 401);
});

test('an admin-scoped key acts as the admin over TCP: every sandbox, admin routes, audited with its key id', async () => {
  const a = h.tenants.createKey({ tenant: 'acme' });
  const admin = h.tenants.createKey({ tenant: 'ops', scopes: ['admin'] });
  const made = await h.fetch('/v1/sandboxes', { key: a.key, method: 'POST', body: '{}' });
  assert.equal(made.status, 201);
  const id = ((await made.json()) as { id: string }).id;
  const list = (await (await h.fetch('/v1/sandboxes', { key: admin.key })).json()) as { sandboxes: Array<{ id: string; tenant: string | null }> };
  assert.deepEqual(list.sandboxes.find((s) => s.id === id)?.tenant, 'acme', "the admin key sees acme's sandbox");
  assert.equal((await h.fetch(`/v1/sandboxes/${id}`, { key: admin.key })).status, 200);
  assert.equal((await h.fetch('/v1/keys', { key: admin.key })).status, 200, 'admin routes');
  const doctor = await h.fetch('/v1/doctor', { key: admin.key });
  assert.equal(doctor.status, 200);
  assert.ok(Array.isArray(((await doctor.json()) as { checks: unknown[] }).checks));
  // A tenant key: none of that.
  assert.equal(((await (await h.fetch('/v1/doctor', { key: a.key })).json()) as { error: { code: string } }).error.code, 'ADMIN_ONLY');
  const other = h.tenants.createKey({ tenant: 'other' });
  assert.equal((await h.fetch(`/v1/sandboxes/${id}`, { key: other.key })).status, 404);
  // Audited as the key that called (its id, never the key; no tenant: it acts as the admin).
  const audit = readFileSync(join(h.stateDir, 'audit', readdirSync(join(h.stateDir, 'audit')).find((f) => f.endsWith('.jsonl')) as string), 'utf8');
  const mine = audit.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; actor?: { keyId?: string; tenant?: string | null } }).filter((r) => r.type === 'api' && r.actor?.keyId === admin.info.id);
  assert.ok(mine.length >= 4, 'the admin key is named in its calls');
  assert.ok(mine.every((r) => r.actor?.tenant === null));
  assert.ok(!audit.includes(admin.key.slice(22)), 'never the key');
  // An admin key with read-only too may only read.
  const ro = h.tenants.createKey({ tenant: 'ops', scopes: ['admin', 'read-only'] });
  assert.equal((await h.fetch('/v1/sandboxes', { key: ro.key })).status, 200);
  const refused = await h.fetch(`/v1/sandboxes/${id}`, { key: ro.key, method: 'DELETE' });
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'READ_ONLY_KEY');
  assert.equal((await h.fetch(`/v1/sandboxes/${id}`, { key: admin.key, method: 'DELETE' })).status, 204);
});

/** Opens a WebSocket to a sandbox's terminal offering `protocols`; resolves with the screen once `want` shows, or the HTTP refusal. */
function terminal(id: string, protocols: string[], want: RegExp): Promise<{ status: number; protocol?: string; screen?: string }> {
  const url = `ws://127.0.0.1:${h.tcp.address.port}/v1/sandboxes/${id}/pty?cols=80&rows=24&cmd=${encodeURIComponent('echo hi-$((20+22)); sleep 2')}`;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    let screen = '';
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => {
        req.destroy(); // the refused upgrade's socket is the client's to close
        resolve({ status: res.statusCode ?? 0, screen: body });
      });
    });
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (binary) screen += data.toString();
      if (want.test(screen)) {
        resolve({ status: 101, protocol: ws.protocol, screen });
        ws.close();
      }
    });
    ws.on('error', (err) => (err.message.includes('Unexpected server response') ? undefined : reject(err)));
  });
}

test('a browser terminal: the key as a subprotocol opens the PTY; kilnd answers kiln.v1; a bad or foreign key is refused', async () => {
  const a = h.tenants.createKey({ tenant: 'acme' });
  const b = h.tenants.createKey({ tenant: 'beta' });
  const made = await h.fetch('/v1/sandboxes', { key: a.key, method: 'POST', body: '{}' });
  const body = (await made.json()) as { id: string };
  assert.equal(made.status, 201, JSON.stringify(body));
  const id = body.id;
  const ok = await terminal(id, ['kiln.v1', `kiln.key.${a.key}`], /hi-42/);
  assert.equal(ok.status, 101, ok.screen);
  assert.equal(ok.protocol, 'kiln.v1', 'the answer names kiln.v1, not the key');
  assert.match(ok.screen ?? '', /hi-42/);

  assert.equal((await terminal(id, ['kiln.v1'], /x/)).status, 401, 'no key');
  assert.equal((await terminal(id, ['kiln.v1', `kiln.key.${a.key.slice(0, -2)}AA`], /x/)).status, 401, 'a wrong key');
  assert.equal((await terminal(id, ['kiln.v1', `kiln.key.${b.key}`], /x/)).status, 404, "another tenant's sandbox");
  const ro = h.tenants.createKey({ tenant: 'acme', scopes: ['read-only'] });
  assert.equal((await terminal(id, ['kiln.v1', `kiln.key.${ro.key}`], /x/)).status, 403, 'a read-only key gets no terminal');
  await h.fetch(`/v1/sandboxes/${id}`, { key: a.key, method: 'DELETE' });
});
