/**
 * `npm run bench`: figures for this machine, side by side in one run (no test asserts a time).
 *   1. kiln create → first exec output (`true`), empty pool (restore from template)
 *   2. the same with a warm pool
 *   3. a cold boot of the same image to the same point (the naive baseline); its steps give
 *      QEMU start → agent answers → dockerd answers
 *   4. `docker run --rm` of a tiny local image on the host's Docker engine
 *   5. host memory (PSS) per idle docker-ready sandbox with 1, 10 and 30 running at once, and
 *      their QEMUs' CPU over KILN_BENCH_IDLE_WINDOW_MS (default 20000) of idleness
 *   6. exec round-trip on a running sandbox
 *   7. network round trip and throughput from a guest to a test server (bench/network.ts)
 *   8. a neighbour's exec latency and kilnd's health answer and CPU while a sandbox attacks
 *      (bench/neighbour.ts: scratch fill, memory hog, console flood, fork bomb)
 *   9. stalled reader: kilnd's RSS before and after KILN_BENCH_STALL_MS (default 30000) of an exec
 *      client that reads nothing while the guest writes as fast as it can (`cat /dev/zero`),
 *      and how much the guest's command got to write (flow control stops it)
 *  10. CLI start: `kiln --version` and `kiln ls` against `node -e 0` in the same run (bench/cli-start.ts)
 *  11. create → first exec through the SDK, over the unix socket and over TCP with TLS
 *  12. wake: exec on a sandbox that auto-pause paused against exec on it running (bench/wake.ts)
 *  13. the sandbox proxy: request latency and throughput through it against the same guest
 *      server reached inside the guest, and a WebSocket echo round trip (bench/proxy.ts)
 *  14. the real `e2b` SDK: Sandbox.create() → first commands.run('true'), restore and warm pool,
 *      next to kiln's SDK and host docker run (bench/e2b.ts)
 *  15. in-guest `docker run --rm` of a tiny local image in restored sandboxes, first run and later
 *      runs, bridge and --network none (bench/guest-docker.ts), next to (4) in the same run (the
 *      phase runs (4) too); the base image's size. Cold boot of that image is (3).
 *  16. `kiln template build` of a small Dockerfile, by stage (bench/template-build.ts)
 * Ratios (1)/(4), (2)/(4), (3)/(1), (15)/(4). Results as JSON in bench-results/.
 * Trials: KILN_BENCH_TRIALS (default 10); densities: KILN_BENCH_DENSITY (default "1,10,30");
 * phases: the arguments, or KILN_BENCH_PHASES (default "docker,restore,cold,pool,density,network,neighbour,stall,cli,wake,proxy,e2b,guest-docker,tplbuild"),
 * e.g. `npm run bench -- neighbour` or `npm run bench -- guest-docker cold`; attacks of (8): KILN_BENCH_ATTACKS (e.g. "console-flood,fork-bomb").
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { DaemonFixture, integrationSkipReason, REPO } from '../harness.js';
import { hostDocker } from './host-docker.js';
import { benchNetwork } from './network.js';
import { benchProxy } from './proxy.js';
import { benchNeighbour } from './neighbour.js';
import { benchClient } from './cli-start.js';
import { benchGuestDocker } from './guest-docker.js';
import { benchTemplateBuild } from './template-build.js';
import { benchWake } from './wake.js';
import { benchE2b } from './e2b.js';
import { stalledReader } from '../stalled-reader.js';
import { cpuPercentOver } from './cpu.js';
import { processMemoryMiB } from './memory.js';
import { fmtMs, summarize, type Summary } from './stats.js';

const TRIALS = Number(process.env.KILN_BENCH_TRIALS ?? 10);
const EXECS = Number(process.env.KILN_BENCH_EXECS ?? 100);
const DENSITY = (process.env.KILN_BENCH_DENSITY ?? '1,10,30').split(',').map(Number);
const IDLE_WINDOW_MS = Number(process.env.KILN_BENCH_IDLE_WINDOW_MS ?? 20_000);
const ARGS = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const PHASES = new Set(ARGS.length ? ARGS : (process.env.KILN_BENCH_PHASES ?? 'docker,restore,cold,pool,density,network,neighbour,stall,cli,wake,proxy,e2b,guest-docker,tplbuild').split(','));
const STALL_MS = Number(process.env.KILN_BENCH_STALL_MS ?? 30_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (s: string) => console.log(s);

async function execTrue(fx: DaemonFixture, id: string): Promise<void> {
  for await (const ev of fx.client.exec(id, { argv: ['true'] })) {
    if (ev.type === 'error') throw new Error(ev.error.message);
    if (ev.type === 'exit' && ev.exitCode !== 0) throw new Error(`true exited ${ev.exitCode}`);
  }
}

/** create → first exec of `true` answered, measured from the client. */
async function createToFirstExec(fx: DaemonFixture, body: Record<string, unknown> = {}): Promise<{ ms: number; createMs: number; id: string }> {
  const t0 = performance.now();
  const sb = await fx.client.create(body);
  const createMs = performance.now() - t0;
  await execTrue(fx, sb.id);
  return { ms: performance.now() - t0, createMs, id: sb.id };
}

async function waitPoolFull(fx: DaemonFixture): Promise<void> {
  for (;;) {
    const info = await fx.client.call<{ pool?: { size: number; ready: number } }>('GET', '/v1/info');
    if (info.pool && info.pool.ready >= info.pool.size) return;
    await sleep(100);
  }
}

async function main(): Promise<void> {
  const skip = integrationSkipReason();
  if (skip) throw new Error(`cannot run: ${skip}`);
  const results: Record<string, unknown> = { date: new Date().toISOString(), cpus: cpus().length, trials: TRIALS };
  const figures: Record<string, Summary> = {};
  const show = (name: string, s: Summary) => {
    figures[name] = s;
    log(`${name.padEnd(44)} p50 ${fmtMs(s.p50).padStart(10)}   p95 ${fmtMs(s.p95).padStart(10)}   n=${s.n}`);
  };

  // (4) host docker baseline (also the reference of (15))
  if (PHASES.has('docker') || PHASES.has('guest-docker')) {
    const docker = await hostDocker(log);
    results.hostDocker = docker.note;
    const dockerRuns: number[] = [];
    for (let i = 0; i < TRIALS; i++) dockerRuns.push(docker.runOnce());
    await docker.stop();
    show('(4) host docker run --rm (tiny image)', summarize(dockerRuns));
  }

  // (1) restore path, (6) exec round-trip, (3) cold boot
  if (PHASES.has('restore') || PHASES.has('cold') || PHASES.has('stall')) {
    const fx = new DaemonFixture('bench');
    await fx.start();
    try {
      const info = await fx.client.call<{ driver: { accel: string; accelReason: string } }>('GET', '/v1/info');
      results.accel = info.driver;
      log(`accelerator: ${info.driver.accel} (${info.driver.accelReason})`);
      const restore: number[] = [];
      // Where the restore time goes, step by step (each step's own duration, p50 over the trials).
      const parts = new Map<string, number[]>();
      const part = (name: string, ms: number) => parts.set(name, [...(parts.get(name) ?? []), ms]);
      for (let i = 0; i < (PHASES.has('restore') ? TRIALS : 0); i++) {
        const r = await createToFirstExec(fx);
        restore.push(r.ms);
        part('create request answered (client)', r.createMs);
        part('first exec after create (client)', r.ms - r.createMs);
        const ev = await fx.client.events(r.id);
        if (!ev.some((e) => e.type === 'vm-restored')) throw new Error('expected a restore; is the default template built? (kiln image build)');
        const steps = ev.filter((e) => e.type === 'step').map((e) => [e.data.step, e.data.durationMs] as const);
        if (i === 0) results.restoreSteps = steps;
        for (const [n, d] of steps) {
          part(`  step ${String(n)}`, Number(d));
          // start-vm's own parts, as the driver timed them (launch = spawn to QMP socket)
          if (n === 'start-vm') {
            const vm = ev.find((e) => e.type === 'vm-restored')?.data ?? {};
            for (const [k, v] of Object.entries(vm)) if (k.endsWith('Ms') && typeof v === 'number') part(`    start-vm: ${k.slice(0, -2)}`, v);
          }
        }
        log(`  restore ${i + 1}: ${Math.round(r.ms)} ms = ${steps.map(([n, d]) => `${String(n)} ${String(d)}`).join(', ')} (+ client, HTTP, first exec)`);
        await fx.client.destroy(r.id);
      }
      if (restore.length) {
        show('(1) create → first exec, restore (empty pool)', summarize(restore));
        const breakdown: Record<string, Summary> = {};
        for (const [n, v] of parts) {
          breakdown[n] = summarize(v);
          log(`    ${n.padEnd(40)} p50 ${fmtMs(breakdown[n].p50).padStart(10)}   p95 ${fmtMs(breakdown[n].p95).padStart(10)}`);
        }
        results.restoreBreakdown = breakdown;
      }

      const keep = (await fx.client.create({})).id;
      const rtt: number[] = [];
      for (let i = 0; i < (PHASES.has('restore') ? EXECS : 0); i++) {
        const t0 = performance.now();
        await execTrue(fx, keep);
        rtt.push(performance.now() - t0);
      }
      if (rtt.length) show('(6) exec round-trip (true)', summarize(rtt));
      if (PHASES.has('stall')) {
        const r = await stalledReader(fx, keep, STALL_MS);
        results.stalledReader = { stallMs: STALL_MS, ...r };
        log(`(9) stalled reader, ${STALL_MS / 1000} s: kilnd RSS ${r.rssBeforeMiB.toFixed(1)} → ${r.rssAfterMiB.toFixed(1)} MiB (+${(r.rssAfterMiB - r.rssBeforeMiB).toFixed(1)}); the guest's cat wrote ${(r.writtenBytes / 1048576).toFixed(2)} MiB and sleeps in ${r.wchan}`);
      }
      await fx.client.destroy(keep);

      const cold: number[] = [];
      const toAgent: number[] = [];
      const toDocker: number[] = [];
      for (let i = 0; i < (PHASES.has('cold') ? TRIALS : 0); i++) {
        const r = await createToFirstExec(fx, { memoryMiB: 1024, vcpus: 2, diskGiB: 11 }); // no template for 11 GiB: cold boot
        cold.push(r.ms);
        const ev = await fx.client.events(r.id);
        const step = (n: string) => Number(ev.find((e) => e.type === 'step' && e.data.step === n)?.data.durationMs ?? NaN);
        toAgent.push(step('start-vm') + step('agent-connect'));
        toDocker.push(step('start-vm') + step('agent-connect') + step('personalize') + step('docker-ready'));
        await fx.client.destroy(r.id);
      }
      if (cold.length) {
        show('(3) create → first exec, cold boot', summarize(cold));
        show('    cold: QEMU start → agent answers', summarize(toAgent));
        show('    cold: QEMU start → dockerd answers', summarize(toDocker));
      }
    } finally {
      await fx.close();
    }
  }

  // (15) in-guest docker run --rm
  if (PHASES.has('guest-docker')) {
    const fxg = new DaemonFixture('bench-guest-docker');
    await fxg.start();
    try {
      const g = await benchGuestDocker(fxg, log);
      results.guestDocker = g;
      show('(15) in-guest docker run --rm, first in sandbox', g.first);
      show('(15) in-guest docker run --rm, later runs', g.later);
      show('(15) in-guest docker run --rm --network none', g.laterNone);
    } finally {
      await fxg.close();
    }
  }

  // (2) warm pool
  if (PHASES.has('pool')) {
    const fxp = new DaemonFixture('bench-pool');
    await fxp.start({ KILN_POOL_SIZE: '2' });
    try {
      const pooled: number[] = [];
      for (let i = 0; i < TRIALS; i++) {
        await waitPoolFull(fxp);
        const r = await createToFirstExec(fxp);
        pooled.push(r.ms);
        await fxp.client.destroy(r.id);
      }
      show('(2) create → first exec, warm pool', summarize(pooled));
    } finally {
      await fxp.close();
    }
  }

  // (5) density: PSS per idle docker-ready sandbox
  const density: Array<{ running: number; totalPssMiB: number; perSandboxPssMiB: number; perSandboxRssMiB: number; allAnswer: boolean; idleCpuPercentPerSandbox: number }> = [];
  if (PHASES.has('density')) {
    const fxd = new DaemonFixture('bench-density');
    await fxd.start();
    try {
      const ids: string[] = [];
      density: for (const n of DENSITY) {
        while (ids.length < n) {
          try {
            ids.push((await fxd.client.create({ timeoutMs: 0 })).id);
          } catch (err) {
            log(`(5) create #${ids.length + 1} failed with ${ids.length} running: ${(err as Error).message}`);
            break density;
          }
        }
        await sleep(5000);
        let answered = 0;
        for (const id of ids) {
          await execTrue(fxd, id);
          answered++;
        }
        const pids = await Promise.all(ids.map(async (id) => (await fxd.client.get(id)).vm?.pid ?? 0));
        const mem = pids.map((pid) => processMemoryMiB(pid));
        const total = mem.reduce((a, m) => a + m.pssMiB, 0);
        await sleep(2000);
        const idleCpu = (await cpuPercentOver(pids, IDLE_WINDOW_MS)) / n;
        const row = { running: n, totalPssMiB: Math.round(total), perSandboxPssMiB: Math.round(total / n), perSandboxRssMiB: Math.round(mem.reduce((a, m) => a + m.rssMiB, 0) / n), allAnswer: answered === n, idleCpuPercentPerSandbox: Math.round(idleCpu * 10) / 10 };
        density.push(row);
        log(`(5) ${String(n).padStart(2)} idle docker-ready sandboxes: total PSS ${row.totalPssMiB} MiB, per sandbox PSS ${row.perSandboxPssMiB} MiB (RSS ${row.perSandboxRssMiB} MiB), all answer exec: ${row.allAnswer}, idle CPU per sandbox ${row.idleCpuPercentPerSandbox} % of a core`);
      }
    } finally {
      await fxd.close();
    }
  }

  // (7) network: guest → test server round trip and throughput (its own test internet)
  if (PHASES.has('network')) results.network = await benchNetwork(log);
  if (PHASES.has('proxy')) results.proxy = await benchProxy(log);

  // (8) neighbour slowdown per attack, kilnd's health answer and CPU
  if (PHASES.has('neighbour')) results.neighbour = await benchNeighbour(log);

  // (10) CLI start against node -e 0, (11) SDK create → first exec over the socket and TCP+TLS
  if (PHASES.has('cli')) results.client = await benchClient(log, Math.max(TRIALS, 20), TRIALS);

  // (12) wake: exec on an auto-paused sandbox against exec on it running
  if (PHASES.has('wake')) results.wake = await benchWake(log, TRIALS);

  // (13) the real e2b SDK against kiln
  if (PHASES.has('e2b')) results.e2b = await benchE2b(log, TRIALS);

  // (14) template build time from a small Dockerfile (issue 15)
  if (PHASES.has('tplbuild')) results.templateBuild = await benchTemplateBuild(log, Number(process.env.KILN_BENCH_TEMPLATE_BUILDS ?? 1));

  const ratio = (a: string, b: string) => (figures[a]?.p50 ?? NaN) / (figures[b]?.p50 ?? NaN);
  const ratios = {
    'restore/docker (1)/(4)': ratio('(1) create → first exec, restore (empty pool)', '(4) host docker run --rm (tiny image)'),
    'pool/docker (2)/(4)': ratio('(2) create → first exec, warm pool', '(4) host docker run --rm (tiny image)'),
    'guest/host docker (15)/(4)': ratio('(15) in-guest docker run --rm, later runs', '(4) host docker run --rm (tiny image)'),
    'cold/restore (3)/(1)': ratio('(3) create → first exec, cold boot', '(1) create → first exec, restore (empty pool)'),
  };
  const measured = Object.entries(ratios).filter(([, v]) => Number.isFinite(v));
  if (measured.length) log('\nratios of p50:');
  for (const [k, v] of measured) log(`  ${k.padEnd(26)} ${v.toFixed(2)}`);
  Object.assign(results, { figures, density, ratios });
  const dir = join(REPO, 'bench-results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
  log(`\nresults: ${file}`);
}

main().catch((err: unknown) => {
  console.error(`bench failed: ${err instanceof Error ? err.stack : String(err)}`);
  process.exit(1);
});
