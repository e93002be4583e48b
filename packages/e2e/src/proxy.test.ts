/**
 * The sandbox proxy against a real VM (docs/ports.md): a node HTTP server in the guest,
 * reached by host name, header and path; streaming both ways (server-sent events released one
 * at a time, a streamed request body); a WebSocket echo both ways; the access matrix with its
 * audit records; the error statuses; headless Chromium through a signed URL; metrics and the
 * sandbox's flow records. One sandbox serves every case (a second one only for the
 * other-sandbox token).
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingMessage } from 'node:http';
import { DaemonFixture, integrationSkipReason } from './harness.js';
import { GUEST_SERVER } from './proxy/guest-server.js';
import { artifactPath, browserMissing, launchBrowser } from './browser.js';

const skip = integrationSkipReason();
const PORT = 8000;

interface Reply {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

describe('sandbox proxy', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('proxy');
  let id = '';
  let token = '';
  let proxyPort = 0;

  /** One request to the proxy on 127.0.0.1 with the Host header given (so *.localhost needs no resolver). */
  const send = (o: { host?: string; path: string; headers?: Record<string, string>; method?: string; body?: string }): Promise<Reply> =>
    new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: proxyPort, path: o.path, method: o.method ?? 'GET', headers: { host: o.host ?? `127.0.0.1:${proxyPort}`, ...o.headers } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.end(o.body);
    });
  const hostOf = (port: number, sid = id) => `${port}-${sid}.localhost:${proxyPort}`;
  const auth = () => ({ 'kiln-access-token': token });
  const sh = async (shell: string) => {
    let out = '';
    let code: number | null = null;
    for await (const ev of fx.client.exec(id, { shell })) {
      if (ev.type === 'stdout' || ev.type === 'stderr') out += Buffer.from(ev.data, 'base64').toString();
      if (ev.type === 'exit') code = ev.exitCode;
    }
    return { out, code };
  };
  const errCode = (r: Reply) => (JSON.parse(r.body) as { error: { code: string } }).error.code;

  before(async () => {
    await fx.start({ KILN_PROXY_LISTEN: '127.0.0.1:0' });
    const info = await fx.client.call<{ proxy: { url: string; listen: string } | null }>('GET', '/v1/info');
    assert.ok(info.proxy, 'GET /v1/info names the proxy');
    assert.match(info.proxy.url, /^http:\/\/\{port\}-\{sandboxId\}\.localhost:\d+\/$/);
    proxyPort = Number(info.proxy.listen.split(':').pop());
    // Auto-pause on: the last case waits for it and wakes the sandbox with a proxied request.
    const created = (await fx.client.create({ autoPauseMs: 4000 })) as unknown as { id: string; accessToken?: string };
    id = created.id;
    assert.ok(created.accessToken && created.accessToken.length >= 22, 'the create response carries the access token');
    token = created.accessToken;
    const script = Buffer.from(GUEST_SERVER).toString('base64');
    const r = await sh(`echo ${script} | base64 -d > /tmp/srv.js && (setsid nohup /opt/kiln/bin/node /tmp/srv.js ${PORT} > /tmp/srv.log 2>&1 &) && for i in $(seq 600); do grep -q listening /tmp/srv.log && exit 0; sleep 0.1; done; cat /tmp/srv.log; exit 1`);
    assert.equal(r.code, 0, r.out);
    await fx.client.call('POST', `/v1/sandboxes/${id}/ports`, { port: PORT });
  });
  after(() => fx.close());

  fx.test('the access token: on create and inspect, never in lists', async () => {
    const got = (await fx.client.get(id)) as unknown as { accessToken?: string };
    assert.equal(got.accessToken, token);
    const list = await fx.client.list();
    assert.ok(list.every((s) => !('accessToken' in s)));
  });

  fx.test('routing by host name, by header (kiln and E2B names) and by path; the guest sees none of the credentials', async () => {
    const byHost = await send({ host: hostOf(PORT), path: '/headers?x=1', headers: auth() });
    assert.equal(byHost.status, 200, byHost.body);
    const seen = JSON.parse(byHost.body) as { url: string; headers: Record<string, string>; remote: string };
    assert.equal(seen.url, '/headers?x=1');
    assert.equal(seen.remote, '127.0.0.1');
    assert.equal(seen.headers['kiln-access-token'], undefined);
    assert.equal(seen.headers.host, hostOf(PORT));
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');

    const byHeader = await send({ path: '/headers', headers: { ...auth(), 'kiln-sandbox-id': id, 'kiln-sandbox-port': String(PORT) } });
    assert.equal(byHeader.status, 200, byHeader.body);
    const e2b = await send({ path: '/headers', headers: { 'x-access-token': token, 'e2b-sandbox-id': id.slice(3), 'e2b-sandbox-port': String(PORT) } });
    assert.equal(e2b.status, 200, e2b.body);
    assert.equal((JSON.parse(e2b.body) as { headers: Record<string, string> }).headers['e2b-sandbox-id'], undefined);

    const byPath = await send({ path: `/sandboxes/${id}/ports/${PORT}/headers?y=2`, headers: auth() });
    assert.equal(byPath.status, 200, byPath.body);
    assert.equal((JSON.parse(byPath.body) as { url: string }).url, '/headers?y=2');
    const bare = await send({ path: `/sandboxes/${id.slice(3)}/ports/${PORT}/`, headers: auth() });
    assert.match(bare.body, /hello from the sandbox/);
  });

  fx.test('server-sent events arrive one at a time, before the response ends; a request body streams', async () => {
    const events: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: proxyPort, path: '/sse', headers: { host: hostOf(PORT), ...auth() } }, (res) => {
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['content-type'], 'text/event-stream');
        let buf = '';
        res.on('data', (b: Buffer) => {
          buf += b.toString();
          for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
            events.push(buf.slice(0, i));
            buf = buf.slice(i + 2);
            // The guest sends the next event only once asked, so this one came through alone.
            if (events.length < 3) send({ host: hostOf(PORT), path: '/next', headers: auth() }).catch(reject);
          }
        });
        res.on('end', () => resolve());
        res.on('close', () => (res.complete ? resolve() : reject(new Error(`the event stream broke off after ${JSON.stringify(events)}`))));
      });
      req.on('error', reject);
      req.end();
    });
    assert.deepEqual(events, ['data: event 1', 'data: event 2', 'data: event 3']);

    const big = 'x'.repeat(1024 * 1024);
    const echo = await send({ host: hostOf(PORT), path: '/echo', method: 'POST', body: big, headers: auth() });
    assert.equal(echo.status, 200);
    assert.equal(echo.body.length, big.length);
  });

  fx.test('WebSocket: the guest greets, and echoes what the client sends', async () => {
    const ws = new WebSocket(`ws://127.0.0.1:${proxyPort}/sandboxes/${id}/ports/${PORT}/ws`, { headers: auth() } as unknown as string[]);
    const got: string[] = [];
    let wake: (() => void) | null = null;
    let failed: Error | null = null;
    ws.addEventListener('message', (ev) => {
      got.push(String(ev.data));
      wake?.();
    });
    ws.addEventListener('error', () => {
      failed = new Error('websocket error');
      wake?.();
    });
    const want = async (n: number) => {
      while (got.length < n) {
        if (failed) throw failed;
        await new Promise<void>((r) => (wake = r));
      }
    };
    await want(1);
    ws.send('ping 1');
    await want(2);
    ws.send('y'.repeat(1000));
    await want(3);
    ws.close();
    assert.deepEqual(got, ['hello from the guest', 'echo: ping 1', `echo: ${'y'.repeat(1000)}`]);
  });

  fx.test('access: none → 401, another sandbox’s token → 403, expired signed URL → 403, public → 200; all audited', async () => {
    const none = await send({ host: hostOf(PORT), path: '/' });
    assert.equal(none.status, 401);
    assert.equal(errCode(none), 'PROXY_UNAUTHENTICATED');

    const other = (await fx.client.create({})) as unknown as { id: string; accessToken: string };
    const foreign = await send({ host: hostOf(PORT), path: '/', headers: { 'kiln-access-token': other.accessToken } });
    await fx.client.destroy(other.id);
    assert.equal(foreign.status, 403);
    assert.equal(errCode(foreign), 'PROXY_FORBIDDEN');

    const signed = await fx.client.call<{ url: string; token: string; public: boolean }>('GET', `/v1/sandboxes/${id}/ports/${PORT}/url?ttl=1`);
    assert.equal(signed.public, false);
    const fresh = await send({ host: hostOf(PORT), path: `/?kiln_sig=${signed.token}` });
    assert.equal(fresh.status, 200, fresh.body);
    await new Promise((r) => setTimeout(r, 2100));
    const expired = await send({ host: hostOf(PORT), path: `/?kiln_sig=${signed.token}` });
    assert.equal(expired.status, 403);
    assert.equal(errCode(expired), 'PROXY_FORBIDDEN');

    await fx.client.call('POST', `/v1/sandboxes/${id}/ports`, { port: PORT, public: true });
    const open = await send({ host: hostOf(PORT), path: '/' });
    assert.equal(open.status, 200);
    await fx.client.call('POST', `/v1/sandboxes/${id}/ports`, { port: PORT, public: false });
    assert.equal((await send({ host: hostOf(PORT), path: '/' })).status, 401);

    const audit = await fx.client.call<{ records: Array<{ type: string; data: Record<string, unknown> }> }>('GET', `/v1/audit?sandbox=${id}`);
    const proxy = audit.records.filter((r) => r.type === 'proxy');
    const reasons = proxy.filter((r) => r.data.decision === 'deny').map((r) => r.data.reason);
    for (const want of ['no-credential', 'other-sandbox-token', 'signature-expired']) assert.ok(reasons.includes(want), `denial ${want} audited: ${JSON.stringify(reasons)}`);
    const vias = proxy.filter((r) => r.data.decision === 'allow').map((r) => r.data.via);
    for (const want of ['token', 'signature', 'public']) assert.ok(vias.includes(want), `allowed ${want} audited: ${JSON.stringify(vias)}`);
  });

  fx.test('errors: unknown sandbox 404, unexposed port 403, nothing listening 502, no route 400', async () => {
    const unknown = await send({ host: hostOf(PORT, `sb-${'0'.repeat(32)}`), path: '/', headers: auth() });
    assert.equal(unknown.status, 404);
    assert.equal(errCode(unknown), 'SANDBOX_NOT_FOUND');
    const unexposed = await send({ host: hostOf(9999), path: '/', headers: auth() });
    assert.equal(unexposed.status, 403);
    assert.equal(errCode(unexposed), 'PORT_NOT_EXPOSED');
    // Without access the port table stays private: the same request without the token is 401.
    assert.equal((await send({ host: hostOf(9999), path: '/' })).status, 401);
    await fx.client.call('POST', `/v1/sandboxes/${id}/ports`, { port: 8001 });
    const refused = await send({ host: hostOf(8001), path: '/', headers: auth() });
    assert.equal(refused.status, 502);
    assert.equal(errCode(refused), 'PROXY_UPSTREAM_REFUSED');
    const noRoute = await send({ path: '/' });
    assert.equal(noRoute.status, 400);
    assert.equal(errCode(noRoute), 'PROXY_NO_ROUTE');
    const ports = await fx.client.call<{ ports: Array<{ port: number; public: boolean; url: string }> }>('GET', `/v1/sandboxes/${id}/ports`);
    assert.deepEqual(
      ports.ports.map((p) => [p.port, p.public, p.url]),
      [
        [PORT, false, `http://${hostOf(PORT)}/`],
        [8001, false, `http://${hostOf(8001)}/`],
      ],
    );
    await fx.client.call('DELETE', `/v1/sandboxes/${id}/ports/8001`);
    assert.equal((await send({ host: hostOf(8001), path: '/', headers: auth() })).status, 403);
  });

  fx.test('CLI: kiln port expose / ls / rm and kiln url (signed for a private port, plain for a public one)', async () => {
    const exposed = await fx.cli(['port', 'expose', id, '8002', '--public']);
    assert.equal(exposed.code, 0, exposed.stderr);
    assert.equal(exposed.stdout.toString(), `8002 public http://${hostOf(8002)}/\n`);
    const ls = await fx.cli(['port', 'ls', id]);
    assert.match(ls.stdout.toString(), new RegExp(`^${PORT}\\s+private\\s+http://${hostOf(PORT).replace(/[.]/g, '\\.')}/$`, 'm'));
    assert.match(ls.stdout.toString(), /^8002\s+public\s+/m);
    assert.equal((await fx.cli(['url', id, '8002'])).stdout.toString(), `http://${hostOf(8002)}/\n`);
    const signed = (await fx.cli(['url', id, String(PORT)])).stdout.toString().trim();
    const u = new URL(signed);
    assert.equal(u.host, hostOf(PORT));
    assert.ok(u.searchParams.get('kiln_sig'));
    assert.equal((await send({ host: u.host, path: `${u.pathname}${u.search}` })).status, 200);
    assert.equal((await fx.cli(['port', 'rm', id, '8002'])).code, 0);
    const rm = await fx.cli(['port', 'rm', id, '8002']);
    assert.notEqual(rm.code, 0);
    assert.match(rm.stderr, /PORT_NOT_FOUND/);
  });

  fx.test('headless Chromium opens a signed URL; the page and its script (by cookie) load', async () => {
    const missing = browserMissing();
    if (missing) return void process.stderr.write(`skipped: ${missing}\n`);
    const { url } = await fx.client.call<{ url: string }>('GET', `/v1/sandboxes/${id}/ports/${PORT}/url`);
    const browser = await launchBrowser();
    try {
      const page = await browser.newPage();
      await page.goto(url);
      await page.locator('#s', { hasText: 'script loaded through the proxy' }).waitFor();
      assert.equal(await page.textContent('#t'), 'hello from the sandbox');
      await page.screenshot({ path: artifactPath('proxy-signed-url.png') });
    } finally {
      await browser.close();
    }
  });

  fx.test('metrics per sandbox and port; proxied connections in the flow records', async () => {
    const text = await (await fx.client.raw({ method: 'GET', path: '/metrics' })).toArray().then((c) => Buffer.concat(c as Buffer[]).toString());
    assert.match(text, new RegExp(`kiln_proxy_requests_total\\{sandbox="${id}",port="${PORT}",status_class="2xx"\\} \\d+`));
    assert.match(text, new RegExp(`kiln_proxy_bytes_total\\{sandbox="${id}",port="${PORT}",direction="out"\\} \\d+`));
    const flows = await fx.client.call<{ flows: Array<{ src: string; dstPort: number; bytesOut: number }> }>('GET', `/v1/sandboxes/${id}/network/flows`);
    assert.ok(flows.flows.some((f) => f.src === 'kiln-proxy' && f.dstPort === PORT && f.bytesOut > 0), JSON.stringify(flows.flows));
  });

  fx.test('a sandbox destroyed mid-stream: the open response ends (no hang), the next request is 404', async () => {
    const other = (await fx.client.create({})) as unknown as { id: string; accessToken: string };
    let code: number | null = null;
    for await (const ev of fx.client.exec(other.id, { shell: `echo ${Buffer.from(GUEST_SERVER).toString('base64')} | base64 -d > /tmp/srv.js && (setsid nohup /opt/kiln/bin/node /tmp/srv.js ${PORT} > /tmp/srv.log 2>&1 &) && for i in $(seq 600); do grep -q listening /tmp/srv.log && exit 0; sleep 0.1; done; exit 1` })) {
      if (ev.type === 'exit') code = ev.exitCode;
    }
    assert.equal(code, 0);
    await fx.client.call('POST', `/v1/sandboxes/${other.id}/ports`, { port: PORT, public: true });
    let destroyed: Promise<void> = Promise.resolve();
    const ended = await new Promise<{ events: string[]; complete: boolean }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: proxyPort, path: '/sse', headers: { host: hostOf(PORT, other.id) } }, (res) => {
        const events: string[] = [];
        res.on('data', (b: Buffer) => {
          events.push(b.toString());
          if (events.length === 1) destroyed = fx.client.destroy(other.id);
        });
        res.on('error', () => undefined);
        res.on('close', () => resolve({ events, complete: res.complete }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(ended.complete, false, 'the stream was cut short, not completed');
    assert.match(ended.events[0] ?? '', /event 1/);
    await destroyed;
    const after = await send({ host: hostOf(PORT, other.id), path: '/' });
    assert.equal(after.status, 404);
    assert.equal(errCode(after), 'SANDBOX_NOT_FOUND');
  });

  fx.test('an auto-paused sandbox is woken by a proxied request, which gets the right answer', async () => {
    for (let i = 0; ; i++) {
      const v = (await fx.client.get(id)) as unknown as { state: string; pausedBy?: string | null };
      if (v.state === 'paused' && v.pausedBy === 'auto') break;
      if (i > 600) throw new Error(`not auto-paused: ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = await send({ host: hostOf(PORT), path: '/', headers: auth() });
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /hello from the sandbox/);
    assert.equal((await fx.client.get(id)).state, 'running');
    const events = await fx.client.events(id);
    assert.ok(events.some((e) => e.type === 'woke'), JSON.stringify(events.map((e) => e.type)));
  });
});
