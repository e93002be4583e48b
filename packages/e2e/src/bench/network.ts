/**
 * Network figures from inside a sandbox to the test internet's server (netlab.ts), through
 * the whole path: guest virtio-net → TAP → the sandbox netns (nftables policy + accounting) →
 * veth → the uplink namespace. Measured by a node script in the guest, so its start-up is not
 * in the figures:
 *   - TCP connect time (fresh connection each), KILN_BENCH_NET_CONNECTS (default 30);
 *   - HTTP request round trip on a kept-alive connection, KILN_BENCH_NET_RTTS (default 200);
 *   - download throughput of KILN_BENCH_NET_MIB (default 64) MiB, 3 times.
 * Run alone: `node packages/e2e/dist/bench/network.js`; `npm run bench` includes it.
 */
import { DaemonFixture } from '../harness.js';
import { LAB, NetLab } from '../netlab.js';
import { fmtMs, summarize, type Summary } from './stats.js';

const CONNECTS = Number(process.env.KILN_BENCH_NET_CONNECTS ?? 30);
const RTTS = Number(process.env.KILN_BENCH_NET_RTTS ?? 200);
const MIB = Number(process.env.KILN_BENCH_NET_MIB ?? 64);

export interface NetworkBench {
  tcpConnectMs: Summary;
  httpRoundTripMs: Summary;
  downloadMiBps: number[];
  downloadMiB: number;
}

const GUEST_SCRIPT = `
const net = require('net'), http = require('http');
const [host, connects, rtts, bytes] = [process.argv[1], +process.argv[2], +process.argv[3], +process.argv[4]];
const connectOnce = () => new Promise((res, rej) => { const t = process.hrtime.bigint(); const s = net.connect(80, host); s.on('connect', () => { res(Number(process.hrtime.bigint() - t) / 1e6); s.destroy(); }); s.on('error', rej); });
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const get = (path, sink) => new Promise((res, rej) => { const t = process.hrtime.bigint(); http.get({ host, port: 80, path, agent }, (r) => { let n = 0; r.on('data', (b) => { n += b.length; }); r.on('end', () => res([Number(process.hrtime.bigint() - t) / 1e6, n])); }).on('error', rej); });
(async () => {
  const out = { connect: [], rtt: [], download: [] };
  for (let i = 0; i < connects; i++) out.connect.push(await connectOnce());
  await get('/');
  for (let i = 0; i < rtts; i++) out.rtt.push((await get('/'))[0]);
  for (let i = 0; i < 3; i++) { const [ms, n] = await get('/bytes/' + bytes); if (n !== bytes) throw new Error('short body ' + n); out.download.push((n / 1048576) / (ms / 1000)); }
  console.log(JSON.stringify(out));
  process.exit(0);
})().catch((e) => { console.error(e.stack); process.exit(1); });
`;

export async function benchNetwork(log: (s: string) => void = console.log): Promise<NetworkBench> {
  const lab = new NetLab();
  await lab.start();
  const fx = new DaemonFixture('bench-net');
  try {
    await fx.start({ KILN_NET_UPLINK: lab.uplink, KILN_NET_DNS: LAB.dns });
    const sb = await fx.client.create({ timeoutMs: 0 });
    const chunks: Buffer[] = [];
    let code: number | null = null;
    let stderr = '';
    for await (const ev of fx.client.exec(sb.id, { argv: ['/opt/kiln/bin/node', '-e', GUEST_SCRIPT, LAB.web, String(CONNECTS), String(RTTS), String(MIB * 1048576)], timeoutMs: 600_000 })) {
      if (ev.type === 'stdout') chunks.push(Buffer.from(ev.data, 'base64'));
      else if (ev.type === 'stderr') stderr += Buffer.from(ev.data, 'base64').toString();
      else if (ev.type === 'exit') code = ev.exitCode;
      else if (ev.type === 'error') throw new Error(ev.error.message);
    }
    if (code !== 0) throw new Error(`guest network bench failed (${code}): ${stderr}`);
    const raw = JSON.parse(Buffer.concat(chunks).toString()) as { connect: number[]; rtt: number[]; download: number[] };
    const r: NetworkBench = { tcpConnectMs: summarize(raw.connect), httpRoundTripMs: summarize(raw.rtt), downloadMiBps: raw.download.map((x) => Math.round(x * 10) / 10), downloadMiB: MIB };
    log(`(net) guest → test server TCP connect          p50 ${fmtMs(r.tcpConnectMs.p50).padStart(10)}   p95 ${fmtMs(r.tcpConnectMs.p95).padStart(10)}   n=${r.tcpConnectMs.n}`);
    log(`(net) guest → test server HTTP round trip      p50 ${fmtMs(r.httpRoundTripMs.p50).padStart(10)}   p95 ${fmtMs(r.httpRoundTripMs.p95).padStart(10)}   n=${r.httpRoundTripMs.n}`);
    log(`(net) download ${MIB} MiB from the test server: ${r.downloadMiBps.join(', ')} MiB/s`);
    return r;
  } finally {
    await fx.close();
    await lab.stop();
  }
}

if (process.argv[1]?.endsWith('/bench/network.js')) {
  benchNetwork().then(
    (r) => console.log(JSON.stringify(r, null, 2)),
    (err: unknown) => {
      console.error(`network bench failed: ${err instanceof Error ? err.stack : String(err)}`);
      process.exit(1);
    },
  );
}
