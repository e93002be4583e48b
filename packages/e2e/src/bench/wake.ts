/**
 * Bench phase `wake` (issue 13): how long an exec of `true` takes on a sandbox that auto-pause
 * paused (the wake: resume, guest clock set, then the exec) against the same exec on it running,
 * interleaved trial by trial so load on the machine hits both alike; and kilnd's own wake time
 * (the `woke` event's wakeMs). Run alone: `node packages/e2e/dist/bench/wake.js` (its own kilnd).
 * (Wake on a proxied request is measured with the proxy's figures.)
 */
import { DaemonFixture, integrationSkipReason } from '../harness.js';
import { fmtMs, summarize, type Summary } from './stats.js';

export interface WakeFigures {
  execOnPaused: Summary;
  execOnRunning: Summary;
  kilndWake: Summary;
  ratio: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function execTrueMs(fx: DaemonFixture, id: string): Promise<number> {
  const t0 = performance.now();
  for await (const ev of fx.client.exec(id, { argv: ['true'] })) {
    if (ev.type === 'error') throw new Error(ev.error.message);
    if (ev.type === 'exit' && ev.exitCode !== 0) throw new Error(`true exited ${ev.exitCode}`);
  }
  return performance.now() - t0;
}

export async function benchWake(log: (s: string) => void, trials: number): Promise<WakeFigures> {
  const fx = new DaemonFixture('bench-wake');
  try {
    await fx.start();
    const sb = await fx.client.create({ autoPauseMs: 1000 });
    const paused: number[] = [];
    const running: number[] = [];
    await execTrueMs(fx, sb.id); // warm
    for (let i = 0; i < trials; i++) {
      while ((await fx.client.get(sb.id)).pausedBy !== 'auto') await sleep(100);
      paused.push(await execTrueMs(fx, sb.id));
      running.push(await execTrueMs(fx, sb.id));
    }
    const woke = (await fx.client.events(sb.id)).filter((e) => e.type === 'woke').map((e) => Number(e.data.wakeMs));
    const f: WakeFigures = { execOnPaused: summarize(paused), execOnRunning: summarize(running), kilndWake: summarize(woke), ratio: NaN };
    f.ratio = f.execOnPaused.p50 / f.execOnRunning.p50;
    const row = (name: string, s: Summary) => log(`${name.padEnd(44)} p50 ${fmtMs(s.p50).padStart(10)}   p95 ${fmtMs(s.p95).padStart(10)}   n=${s.n}`);
    row('(12) exec `true` on an auto-paused sandbox', f.execOnPaused);
    row('(12) exec `true` on it running', f.execOnRunning);
    row('(12) kilnd wake (resume + clock set)', f.kilndWake);
    log(`(12) paused / running = ${f.ratio.toFixed(2)}×`);
    await fx.client.destroy(sb.id);
    return f;
  } finally {
    await fx.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const skip = integrationSkipReason();
  if (skip) throw new Error(`cannot run: ${skip}`);
  await benchWake(console.log, Number(process.env.KILN_BENCH_TRIALS ?? 10));
}
