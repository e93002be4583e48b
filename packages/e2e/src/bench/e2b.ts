/**
 * Bench phase `e2b` (14; issue 14): the real `e2b` SDK against kiln, `Sandbox.create()` → first
 * `commands.run('true')`, on the restore path (empty pool) and with a warm pool, next to kiln's
 * own SDK (create → first exec, over the same TCP listener) and host `docker run --rm`, in one
 * run. The SDK gets only E2B_API_URL, E2B_SANDBOX_URL and E2B_API_KEY.
 * While this kilnd has no E2B data plane (commands.run answers 501: branch e2b-envd), the figure
 * is `Sandbox.create()` → `isRunning()` instead, and the output says so.
 * Run alone: `node packages/e2e/dist/bench/e2b.js` (or `npm run bench -- e2b`).
 */
import { Sandbox } from 'e2b';
import { Kiln } from '@kiln/sdk';
import { integrationSkipReason } from '../harness.js';
import { E2bFixture } from '../e2b-harness.js';
import { hostDocker } from './host-docker.js';
import { benchSdkCreateExec } from './cli-start.js';
import { fmtMs, summarize, type Summary } from './stats.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether this kilnd's E2B data plane runs commands (false: 501, no envd API yet). */
async function hasDataPlane(): Promise<boolean> {
  const sbx = await Sandbox.create();
  try {
    await sbx.commands.run('true');
    return true;
  } catch (err) {
    if (/unimplemented|501|no E2B in-sandbox API/i.test(String((err as Error).message))) return false;
    throw err;
  } finally {
    await sbx.kill();
  }
}

async function e2bTrials(trials: number, commands: boolean, beforeEach: () => Promise<void>): Promise<Summary> {
  const ms: number[] = [];
  for (let i = 0; i < trials; i++) {
    await beforeEach();
    const t0 = performance.now();
    const sbx = await Sandbox.create();
    if (commands) {
      const r = await sbx.commands.run('true');
      if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode}`);
    } else if (!(await sbx.isRunning())) throw new Error('a new sandbox is not running');
    ms.push(performance.now() - t0);
    await sbx.kill();
  }
  return summarize(ms);
}

async function onePath(name: string, pool: number, trials: number, row: (n: string, s: Summary) => void): Promise<{ e2b: Summary; kiln: Summary; commands: boolean }> {
  const fx = new E2bFixture(`bench-e2b-${name}`);
  await fx.start(pool ? { KILN_POOL_SIZE: String(pool) } : {});
  try {
    fx.useEnv();
    const kilnKey = (await fx.daemon.client.call<{ key: string }>('POST', '/v1/keys', { tenant: 'e2b' })).key;
    const kiln = Kiln.connect({ url: fx.origin, apiKey: kilnKey });
    const poolFull = async () => {
      if (!pool) return;
      for (;;) {
        const info = await fx.daemon.client.call<{ pool?: { size: number; ready: number } }>('GET', '/v1/info');
        if (info.pool && info.pool.ready >= info.pool.size) return;
        await sleep(100);
      }
    };
    await poolFull();
    const commands = await hasDataPlane();
    const what = commands ? "first commands.run('true')" : 'isRunning() (no E2B data plane yet)';
    const e2b = await e2bTrials(trials, commands, poolFull);
    row(`(14) e2b SDK create → ${what}, ${name}`, e2b);
    const native = await benchSdkCreateExec(kiln, trials, poolFull);
    row(`(14) kiln SDK create → first exec, ${name}`, native);
    return { e2b, kiln: native, commands };
  } finally {
    await fx.close();
  }
}

export async function benchE2b(log: (s: string) => void, trials: number): Promise<Record<string, unknown>> {
  const row = (name: string, s: Summary) => log(`${name.padEnd(64)} p50 ${fmtMs(s.p50).padStart(10)}   p95 ${fmtMs(s.p95).padStart(10)}   n=${s.n}`);
  const docker = await hostDocker(log);
  const runs: number[] = [];
  for (let i = 0; i < trials; i++) runs.push(docker.runOnce());
  await docker.stop();
  const dockerRun = summarize(runs);
  row('(14) host docker run --rm (tiny image)', dockerRun);
  const restore = await onePath('restore', 0, trials, row);
  const pooled = await onePath('warm pool', 2, trials, row);
  const r = (a: Summary, b: Summary) => (a.p50 / b.p50).toFixed(2);
  log(`(14) e2b/kiln SDK: restore ${r(restore.e2b, restore.kiln)}×, warm pool ${r(pooled.e2b, pooled.kiln)}×; e2b/docker: restore ${r(restore.e2b, dockerRun)}×, warm pool ${r(pooled.e2b, dockerRun)}×`);
  return { hostDocker: dockerRun, restore, warmPool: pooled, firstCall: restore.commands ? "commands.run('true')" : 'isRunning()' };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const skip = integrationSkipReason();
  if (skip) throw new Error(`cannot run: ${skip}`);
  await benchE2b(console.log, Number(process.env.KILN_BENCH_TRIALS ?? 5));
}
