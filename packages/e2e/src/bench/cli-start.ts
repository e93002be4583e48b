/**
 * Bench figures of the client side (issue 12): how long `kiln --version` and `kiln ls` take
 * against a bare `node -e 0` in the same run (interleaved, so load on the machine hits all three
 * alike), and create → first exec through the SDK (over the unix socket; over TCP with TLS when
 * a URL is given). Run alone: `node packages/e2e/dist/bench/cli-start.js` (starts its own kilnd).
 */
import { spawnSync } from 'node:child_process';
import { Kiln } from '@kiln/sdk';
import { CLI, DaemonFixture, integrationSkipReason } from '../harness.js';
import { fmtMs, summarize, type Summary } from './stats.js';
import { tlsListener } from '../tls-listener.js';

const time = (argv: string[], env: NodeJS.ProcessEnv): number => {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, argv, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr.toString()}`);
  return performance.now() - t0;
};

export interface CliStartFigures {
  nodeBare: Summary;
  version: Summary;
  ls: Summary;
  versionRatio: number;
  lsRatio: number;
}

/** `kiln --version` and `kiln ls` (against `socket`) next to `node -e 0`, p50/p95 and p50 ratios. */
export function benchCliStart(socket: string, trials: number): CliStartFigures {
  const env = { ...process.env, KILN_SOCKET: socket, KILN_HOST: '' };
  const bare: number[] = [];
  const version: number[] = [];
  const ls: number[] = [];
  time(['-e', '0'], env); // warm the page cache
  time([CLI, '--version'], env);
  for (let i = 0; i < trials; i++) {
    bare.push(time(['-e', '0'], env));
    version.push(time([CLI, '--version'], env));
    ls.push(time([CLI, 'ls'], env));
  }
  const f = { nodeBare: summarize(bare), version: summarize(version), ls: summarize(ls) };
  return { ...f, versionRatio: f.version.p50 / f.nodeBare.p50, lsRatio: f.ls.p50 / f.nodeBare.p50 };
}

/** create → first exec answered, through the SDK; the sandbox is destroyed after each trial (`beforeEach` runs untimed, e.g. to wait for a full pool). */
export async function benchSdkCreateExec(kiln: Kiln, trials: number, beforeEach?: () => Promise<void>): Promise<Summary> {
  const ms: number[] = [];
  for (let i = 0; i < trials; i++) {
    await beforeEach?.();
    const t0 = performance.now();
    await using sb = await kiln.sandboxes.create();
    const r = await sb.exec(['true']);
    if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode}`);
    ms.push(performance.now() - t0);
  }
  return summarize(ms);
}

export function printCliStart(f: CliStartFigures, log: (s: string) => void): void {
  const row = (name: string, s: Summary) => log(`${name.padEnd(44)} p50 ${fmtMs(s.p50).padStart(10)}   p95 ${fmtMs(s.p95).padStart(10)}   n=${s.n}`);
  row('(10) node -e 0', f.nodeBare);
  row('(10) kiln --version', f.version);
  row('(10) kiln ls', f.ls);
  log(`(10) kiln --version / node -e 0 = ${f.versionRatio.toFixed(2)}×, kiln ls / node -e 0 = ${f.lsRatio.toFixed(2)}× (target ≤ 1.5×)`);
}

/**
 * (10) and (11) in one go, on a kilnd of their own that also serves TCP with TLS (a self-signed
 * certificate) so the SDK figure over TCP+TLS stands next to the unix-socket one.
 */
export async function benchClient(log: (s: string) => void, trials: number, sdkTrials: number): Promise<Record<string, unknown>> {
  const fx = new DaemonFixture('bench-client');
  const tls = await tlsListener(fx.stateDir);
  await fx.start(tls.env);
  try {
    const cli = benchCliStart(fx.socket, trials);
    printCliStart(cli, log);
    const key = (await fx.client.call<{ key: string }>('POST', '/v1/keys', { tenant: 'bench' })).key;
    const row = (name: string, s: Summary) => log(`${name.padEnd(44)} p50 ${fmtMs(s.p50).padStart(10)}   p95 ${fmtMs(s.p95).padStart(10)}   n=${s.n}`);
    const unix = await benchSdkCreateExec(Kiln.connect({ socket: fx.socket }), sdkTrials);
    row('(11) SDK create → first exec, unix socket', unix);
    const overTls = await benchSdkCreateExec(Kiln.connect({ url: tls.url, apiKey: key, ca: tls.ca }), sdkTrials);
    row('(11) SDK create → first exec, TCP + TLS', overTls);
    log(`(11) TCP + TLS / unix socket = ${(overTls.p50 / unix.p50).toFixed(2)}×`);
    return { cliStart: cli, sdkCreateExec: { unixSocket: unix, tcpTls: overTls } };
  } finally {
    await fx.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const skip = integrationSkipReason();
  if (skip) throw new Error(`cannot run: ${skip}`);
  await benchClient(console.log, Number(process.env.KILN_BENCH_TRIALS ?? 20), Number(process.env.KILN_BENCH_SDK_TRIALS ?? 3));
}
