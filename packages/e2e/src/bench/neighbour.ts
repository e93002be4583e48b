/**
 * Bench phase `neighbour`: what one sandbox's abuse costs another, and kilnd, on this machine.
 * Two sandboxes restored from the default template: A attacks (fills its scratch disk, hogs
 * memory past its RAM, floods its console, fork-bombs), B is the yardstick. For each attack:
 * B's exec latency (`true`) idle just before (15 samples) and during the attack (up to 18,
 * starting 4.5 s in, once the CPU balancer has demoted a spinning A), their p50s and ratio
 * (the target is 2×); kilnd's answer time to /v1/health during it; and the share of a
 * core kilnd used. These used to be assertions in hardening.test (docs/hardening.md has the
 * history); the test now checks behaviour only.
 */
import { DaemonFixture } from '../harness.js';
import { processCpuSeconds } from './cpu.js';
import { fmtMs, summarize, type Summary } from './stats.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface AttackFigures {
  idle: Summary;
  during: Summary;
  /** p50 during / p50 idle. */
  slowdown: number;
  health: Summary;
  /** kilnd's CPU over the attack, in cores. */
  kilndCores: number;
  seconds: number;
}

const ATTACKS: Array<{ name: string; shell: string; timeoutMs: number; after?: string }> = [
  { name: 'scratch fill', shell: 'dd if=/dev/zero of=/var/tmp/fill bs=1M 2>&1; sync', timeoutMs: 600_000, after: 'rm -f /var/tmp/fill; fstrim -a 2>/dev/null; true' },
  { name: 'memory hog', shell: 'head -c 1600M /dev/zero | tail > /dev/null', timeoutMs: 300_000 },
  { name: 'console flood', shell: 'timeout 20 sh -c "yes kiln-console-flood-0123456789abcdef > /dev/console"; true', timeoutMs: 120_000 },
  // Last: A may not survive it (kilnd's heartbeat may fail it while its guest is saturated).
  { name: 'fork bomb', shell: "timeout -s KILL 30 sh -c 'b(){ b | b & }; b; sleep 60'; true", timeoutMs: 120_000 },
];

export async function benchNeighbour(log: (s: string) => void, only = process.env.KILN_BENCH_ATTACKS): Promise<Record<string, AttackFigures>> {
  const wanted = only ? new Set(only.split(',')) : null;
  const fx = new DaemonFixture('bench-neighbour');
  await fx.start({ KILN_GUEST_LOG_MAX_BYTES: String(256 * 1024) });
  const out: Record<string, AttackFigures> = {};
  try {
    const [a, b] = await Promise.all([fx.client.create({ labels: { role: 'attacker' } }), fx.client.create({ labels: { role: 'neighbour' } })]);
    const sh = async (id: string, shell: string, timeoutMs = 120_000): Promise<void> => {
      for await (const ev of fx.client.exec(id, { shell, timeoutMs })) if (ev.type === 'error') throw new Error(`${ev.error.code}: ${ev.error.message}`);
    };
    const latencyB = async (n: number): Promise<number[]> => {
      const xs: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await sh(b.id, 'true');
        xs.push(performance.now() - t0);
      }
      return xs;
    };
    await latencyB(3); // warm B's exec path
    for (const attack of ATTACKS) {
      if (wanted && !wanted.has(attack.name.replace(' ', '-'))) continue;
      const idle = summarize(await latencyB(15));
      const kiln0 = processCpuSeconds(fx.pid ?? 0);
      const t0 = performance.now();
      let done = false;
      const running = sh(a.id, attack.shell, attack.timeoutMs)
        .catch(() => undefined)
        .finally(() => (done = true));
      await sleep(4500);
      const during: number[] = [];
      const health: number[] = [];
      for (let round = 0; round < 6 && !done; round++) {
        const h0 = performance.now();
        await fx.client.call('GET', '/v1/health');
        health.push(performance.now() - h0);
        during.push(...(await latencyB(3)));
      }
      await running;
      const seconds = (performance.now() - t0) / 1000;
      const kilndCores = (processCpuSeconds(fx.pid ?? 0) - kiln0) / seconds;
      if (during.length < 3) during.push(...(await latencyB(3)));
      if (attack.after) await sh(a.id, attack.after).catch(() => undefined);
      const d = summarize(during);
      const f: AttackFigures = { idle, during: d, slowdown: d.p50 / idle.p50, health: summarize(health.length ? health : [NaN]), kilndCores, seconds };
      out[attack.name] = f;
      log(
        `(8) ${attack.name.padEnd(14)} B exec p50 idle ${fmtMs(idle.p50)} → during ${fmtMs(d.p50)} (n=${d.n}): slowdown ${f.slowdown.toFixed(2)}×; ` +
          `kilnd /v1/health p50 ${fmtMs(f.health.p50)} max ${fmtMs(f.health.max)}; kilnd CPU ${f.kilndCores.toFixed(2)} of a core over ${seconds.toFixed(0)} s`,
      );
    }
  } finally {
    await fx.close();
  }
  return out;
}
