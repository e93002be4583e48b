/**
 * `npm run bench`: measured figures for this machine (no test asserts a time).
 *   - cold boot: QEMU start → agent answers, → dockerd answers, whole create (p50/p95 over
 *     KILN_BENCH_BOOTS trials, default 3: a TCG cold boot takes tens of seconds);
 *   - exec round-trip of `true` on a running sandbox (p50/p95 over KILN_BENCH_EXECS, default 50);
 *   - host memory (RSS/PSS) of the QEMU process of one idle docker-ready sandbox.
 * Writes bench-results/bench-<timestamp>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonFixture, integrationSkipReason, REPO } from '../harness.js';
import { processMemoryMiB } from './memory.js';
import { fmtMs, summarize, type Summary } from './stats.js';

const BOOTS = Number(process.env.KILN_BENCH_BOOTS ?? 3);
const EXECS = Number(process.env.KILN_BENCH_EXECS ?? 50);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const skip = integrationSkipReason();
  if (skip) {
    console.error(`bench: cannot run: ${skip}`);
    process.exit(1);
  }
  const fx = new DaemonFixture('bench');
  await fx.start();
  const results: Record<string, unknown> = { host: { cpus: (await import('node:os')).cpus().length, date: new Date().toISOString() } };
  try {
    const info = await fx.client.call<{ driver: { accel: string; accelReason: string } }>('GET', '/v1/info');
    results.accel = info.driver;
    console.log(`accelerator: ${info.driver.accel} (${info.driver.accelReason})`);

    const toAgent: number[] = [];
    const toDocker: number[] = [];
    const create: number[] = [];
    let keep: string | null = null;
    for (let i = 0; i < BOOTS; i++) {
      const t0 = performance.now();
      const sb = await fx.client.create({ memoryMiB: 1024, vcpus: 2 });
      create.push(performance.now() - t0);
      const ev = await fx.client.events(sb.id);
      const step = (name: string) => Number(ev.find((e) => e.type === 'step' && e.data.step === name)?.data.durationMs ?? NaN);
      const agent = step('start-vm') + step('agent-connect');
      toAgent.push(agent);
      toDocker.push(agent + step('docker-ready'));
      console.log(`boot ${i + 1}/${BOOTS}: agent ${fmtMs(agent)}, docker ${fmtMs(agent + step('docker-ready'))}, create ${fmtMs(create.at(-1) ?? 0)}`);
      if (keep === null) keep = sb.id;
      else await fx.client.destroy(sb.id);
    }
    if (!keep) throw new Error('no sandbox');

    const rtt: number[] = [];
    for (let i = 0; i < EXECS; i++) {
      const t0 = performance.now();
      for await (const ev of fx.client.exec(keep, { argv: ['true'] })) if (ev.type === 'error') throw new Error(ev.error.message);
      rtt.push(performance.now() - t0);
    }

    await sleep(5000);
    const pid = (await fx.client.get(keep)).vm?.pid;
    const mem = pid ? processMemoryMiB(pid) : null;

    const figures: Record<string, Summary> = {
      qemuStartToAgentMs: summarize(toAgent),
      qemuStartToDockerReadyMs: summarize(toDocker),
      coldCreateMs: summarize(create),
      execRoundTripMs: summarize(rtt),
    };
    results.figures = figures;
    results.idleSandboxMemoryMiB = mem;
    console.log('\nfigure                              p50         p95        n');
    for (const [k, s] of Object.entries(figures)) console.log(`${k.padEnd(34)} ${fmtMs(s.p50).padStart(10)} ${fmtMs(s.p95).padStart(10)} ${String(s.n).padStart(6)}`);
    if (mem) console.log(`idle docker-ready sandbox (1 GiB guest): QEMU RSS ${mem.rssMiB.toFixed(0)} MiB, PSS ${mem.pssMiB.toFixed(0)} MiB`);
  } finally {
    await fx.close();
  }
  const dir = join(REPO, 'bench-results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nresults: ${file}`);
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});
