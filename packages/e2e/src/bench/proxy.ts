/**
 * Sandbox proxy figures (docs/ports.md), phase `proxy`: a node server in the guest, reached
 *   - through the proxy from the host (fresh connection per request, as a browser's first load);
 *   - directly, by a node client inside the guest on 127.0.0.1 (the same server, no proxy);
 * request latency p50/p95 of each (KILN_BENCH_PROXY_REQS, default 100) and their ratio, download
 * throughput of KILN_BENCH_PROXY_MIB (default 16) MiB 3 times each and the ratio, and a WebSocket
 * echo round trip through the proxy (KILN_BENCH_PROXY_WS, default 100 messages).
 * Run alone: `node packages/e2e/dist/bench/main.js proxy`.
 */
import { request } from 'node:http';
import { DaemonFixture } from '../harness.js';
import { GUEST_SERVER } from '../proxy/guest-server.js';
import { fmtMs, summarize, type Summary } from './stats.js';

const REQS = Number(process.env.KILN_BENCH_PROXY_REQS ?? 100);
const MIB = Number(process.env.KILN_BENCH_PROXY_MIB ?? 16);
const WS_MSGS = Number(process.env.KILN_BENCH_PROXY_WS ?? 100);
const PORT = 8000;

export interface ProxyBench {
  proxiedMs: Summary;
  directMs: Summary;
  latencyRatioP50: number;
  proxiedMiBps: number[];
  directMiBps: number[];
  throughputRatio: number;
  wsRoundTripMs: Summary;
}

const DIRECT = `
const http = require('http');
const [reqs, bytes] = process.argv.slice(2).map(Number);
const get = (path) => new Promise((res, rej) => { const t = process.hrtime.bigint(); http.get({ host: '127.0.0.1', port: ${PORT}, path, agent: false }, (r) => { let n = 0; r.on('data', (b) => { n += b.length; }); r.on('end', () => res([Number(process.hrtime.bigint() - t) / 1e6, n])); }).on('error', rej); });
(async () => {
  const out = { rtt: [], mibps: [] };
  await get('/headers');
  for (let i = 0; i < reqs; i++) out.rtt.push((await get('/headers'))[0]);
  for (let i = 0; i < 3; i++) { const [ms, n] = await get('/bytes/' + bytes); out.mibps.push((n / 1048576) / (ms / 1000)); }
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e.stack); process.exit(1); });
`;

export async function benchProxy(log: (s: string) => void): Promise<ProxyBench> {
  const fx = new DaemonFixture('bench-proxy');
  try {
    await fx.start({ KILN_PROXY_LISTEN: '127.0.0.1:0' });
    const info = await fx.client.call<{ proxy: { listen: string } }>('GET', '/v1/info');
    const proxyPort = Number(info.proxy.listen.split(':').pop());
    const sb = (await fx.client.create({})) as unknown as { id: string; accessToken: string };
    const sh = async (shell: string): Promise<string> => {
      let out = '';
      let code: number | null = null;
      for await (const ev of fx.client.exec(sb.id, { shell })) {
        if (ev.type === 'stdout' || ev.type === 'stderr') out += Buffer.from(ev.data, 'base64').toString();
        if (ev.type === 'exit') code = ev.exitCode;
      }
      if (code !== 0) throw new Error(`guest command failed (${code}): ${out}`);
      return out;
    };
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    await sh(`echo ${b64(GUEST_SERVER)} | base64 -d > /tmp/srv.js && echo ${b64(DIRECT)} | base64 -d > /tmp/direct.js && (setsid nohup /opt/kiln/bin/node /tmp/srv.js ${PORT} > /tmp/srv.log 2>&1 &) && for i in $(seq 600); do grep -q listening /tmp/srv.log && exit 0; sleep 0.1; done; exit 1`);
    await fx.client.call('POST', `/v1/sandboxes/${sb.id}/ports`, { port: PORT });
    const host = `${PORT}-${sb.id}.localhost:${proxyPort}`;
    const get = (path: string) =>
      new Promise<[number, number]>((resolve, reject) => {
        const t = performance.now();
        const req = request({ host: '127.0.0.1', port: proxyPort, path, agent: false, headers: { host, 'kiln-access-token': sb.accessToken } }, (res) => {
          let n = 0;
          res.on('data', (b: Buffer) => (n += b.length));
          res.on('end', () => (res.statusCode === 200 ? resolve([performance.now() - t, n]) : reject(new Error(`status ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end();
      });

    await get('/headers');
    const proxied: number[] = [];
    for (let i = 0; i < REQS; i++) proxied.push((await get('/headers'))[0]);
    const proxiedMiBps: number[] = [];
    for (let i = 0; i < 3; i++) {
      const [ms, n] = await get(`/bytes/${MIB * 1048576}`);
      proxiedMiBps.push(n / 1048576 / (ms / 1000));
    }
    const direct = JSON.parse(await sh(`/opt/kiln/bin/node /tmp/direct.js ${REQS} ${MIB * 1048576}`)) as { rtt: number[]; mibps: number[] };

    const ws = new WebSocket(`ws://127.0.0.1:${proxyPort}/sandboxes/${sb.id}/ports/${PORT}/`, { headers: { 'kiln-access-token': sb.accessToken } } as unknown as string[]);
    const inbox: string[] = [];
    let wake: (() => void) | null = null;
    ws.addEventListener('message', (ev) => {
      inbox.push(String(ev.data));
      wake?.();
    });
    const next = async () => {
      while (!inbox.length) await new Promise<void>((r) => (wake = r));
      return inbox.shift();
    };
    await next(); // the greeting
    const wsRtt: number[] = [];
    for (let i = 0; i < WS_MSGS; i++) {
      const t = performance.now();
      ws.send(`m${i}`);
      await next();
      wsRtt.push(performance.now() - t);
    }
    ws.close();

    const out: ProxyBench = {
      proxiedMs: summarize(proxied),
      directMs: summarize(direct.rtt),
      latencyRatioP50: 0,
      proxiedMiBps,
      directMiBps: direct.mibps,
      throughputRatio: 0,
      wsRoundTripMs: summarize(wsRtt),
    };
    out.latencyRatioP50 = out.proxiedMs.p50 / out.directMs.p50;
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
    out.throughputRatio = med(proxiedMiBps) / med(direct.mibps);
    const line = (name: string, s: Summary) => log(`${name.padEnd(44)} p50 ${fmtMs(s.p50).padStart(10)}   p95 ${fmtMs(s.p95).padStart(10)}   n=${s.n}`);
    line('proxy: request through the proxy', out.proxiedMs);
    line('proxy: request in the guest (direct)', out.directMs);
    log(`${'proxy: latency ratio (p50 proxied/direct)'.padEnd(44)} ${out.latencyRatioP50.toFixed(1)}x`);
    log(`${`proxy: ${MIB} MiB download through the proxy`.padEnd(44)} ${proxiedMiBps.map((x) => x.toFixed(1)).join(', ')} MiB/s`);
    log(`${`proxy: ${MIB} MiB download in the guest (direct)`.padEnd(44)} ${direct.mibps.map((x) => x.toFixed(1)).join(', ')} MiB/s`);
    log(`${'proxy: throughput ratio (median proxied/direct)'.padEnd(44)} ${out.throughputRatio.toFixed(2)}`);
    line('proxy: WebSocket echo round trip', out.wsRoundTripMs);
    await fx.client.destroy(sb.id);
    return out;
  } finally {
    await fx.close();
  }
}
