/**
 * The real `e2b` SDK with kiln's sandbox proxy (issues 13 and 14 together): E2B_SANDBOX_URL may be
 * the proxy's origin (envd is port 49983 there), `sandbox.getHost(port)` names the proxy's host
 * form and reaches a server in the guest, an E2B sandbox's ports are public as on E2B unless it
 * was created with `network.allowPublicTraffic: false` (then `e2b-traffic-access-token` opens
 * them), and the E2B origin hands other ports to the proxy.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { Sandbox } from 'e2b';
import { E2bFixture } from './e2b-harness.js';
import { integrationSkipReason } from './harness.js';

const GUEST_PORT = 8000;
const SERVER = `/opt/kiln/bin/node -e "require('http').createServer((q,s)=>s.end('hi from '+q.url)).listen(${GUEST_PORT},'127.0.0.1')"`;

/** A GET to 127.0.0.1:port with the given Host and headers (no DNS needed for *.localhost). */
function get(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Waits until the guest's server answers through `probe` (the background command needs a moment). */
async function until(probe: () => Promise<{ status: number; body: string }>): Promise<{ status: number; body: string }> {
  let last = { status: 0, body: '' };
  for (let i = 0; i < 120; i++) {
    last = await probe();
    if (last.status !== 502) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  return last;
}

describe('e2b SDK with the sandbox proxy', { skip: integrationSkipReason() ?? false }, () => {
  const fx = new E2bFixture('e2b-ports');
  let proxyPort = 0;
  let open: Sandbox;
  let closed: Sandbox;
  const opts = () => ({ apiKey: fx.key, apiUrl: fx.origin, sandboxUrl: `http://127.0.0.1:${proxyPort}` });

  before(async () => {
    await fx.start({ KILN_PROXY_LISTEN: '127.0.0.1:0' });
    const line = readFileSync(fx.daemon.logPath, 'utf8').split('\n').find((l) => l.includes('"kilnd listening"'));
    proxyPort = (JSON.parse(line ?? '{}') as { proxy?: { port?: number } }).proxy?.port ?? 0;
    assert.ok(proxyPort > 0, 'kilnd logged its proxy port');
  });

  after(async () => {
    await open?.kill().catch(() => undefined);
    await closed?.kill().catch(() => undefined);
    await fx.close();
  });

  it('envd through the proxy origin, and getHost(port) reaches the guest with no token (public, as on E2B)', () =>
    fx.test('public', async () => {
      // E2B_SANDBOX_URL = the proxy: every envd call goes to port 49983 of the proxy, with X-Access-Token.
      open = await Sandbox.create(opts());
      fx.track(open.sandboxId);
      const r = await open.commands.run('echo hi-through-the-proxy');
      assert.equal(r.stdout.trim(), 'hi-through-the-proxy');
      await open.commands.run(SERVER, { background: true });
      const host = open.getHost(GUEST_PORT);
      assert.equal(host, `${GUEST_PORT}-${open.sandboxId}.localhost:${proxyPort}`);
      const res = await until(() => get(proxyPort, '/by-host', { host }));
      assert.equal(res.status, 200, res.body);
      assert.equal(res.body, 'hi from /by-host');
      // The E2B origin (kiln's TCP listener) routes a non-envd port by header to the proxy.
      const viaApi = await get(fx.port, '/by-header', { 'e2b-sandbox-id': open.sandboxId, 'e2b-sandbox-port': String(GUEST_PORT) });
      assert.equal(viaApi.status, 200, viaApi.body);
      assert.equal(viaApi.body, 'hi from /by-header');
    }));

  it('allowPublicTraffic false: its ports want the traffic access token; another sandbox stays unaffected', () =>
    fx.test('private', async () => {
      closed = await Sandbox.create({ ...opts(), network: { allowPublicTraffic: false } });
      fx.track(closed.sandboxId);
      const token = closed.trafficAccessToken;
      assert.ok(token, 'the create answer carries a traffic access token');
      await closed.commands.run(SERVER, { background: true });
      const host = closed.getHost(GUEST_PORT);
      const ok = await until(() => get(proxyPort, '/with-token', { host, 'e2b-traffic-access-token': token }));
      assert.equal(ok.status, 200, ok.body);
      assert.equal(ok.body, 'hi from /with-token');
      const anonymous = await get(proxyPort, '/anonymous', { host });
      assert.equal(anonymous.status, 401, anonymous.body);
      // The public sandbox's token does not open this one.
      const other = await get(proxyPort, '/other', { host, 'e2b-traffic-access-token': (open as unknown as { envdAccessToken?: string }).envdAccessToken ?? 'x' });
      assert.equal(other.status, 403, other.body);
    }));
});
