/**
 * In-guest `docker run --rm` of a tiny local image (the guest's static busybox, imported: no
 * registry) in sandboxes restored from the default template: the first run in each fresh
 * sandbox and the runs after it, timed inside the guest (no exec round trip in the figure),
 * with the default bridge network and with `--network none`, and where a run's time goes (the
 * phases of dockerd's debug log, docker-breakdown.ts). Also the image's size.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DaemonFixture } from '../harness.js';
import { IMAGE_STATE_DIR } from '../harness.js';
import { summarize, type Summary } from './stats.js';
import { breakdownScript, medianBreakdown, parseBreakdowns, type Breakdown } from './docker-breakdown.js';

const SANDBOXES = Number(process.env.KILN_BENCH_DOCKER_SANDBOXES ?? 3);
const RUNS = Number(process.env.KILN_BENCH_DOCKER_RUNS ?? 10);
/** Extra runs, after the timed ones, with dockerd's debug log on: the phase breakdown (docker-breakdown.ts). */
const BREAKDOWN_RUNS = 3;

/** Prints one line per run: "<mode> <ms>"; the first default-network run is the sandbox's first ever. */
const SCRIPT = `set -e
d=$(mktemp -d); mkdir $d/bin; cp /opt/kiln/bin/busybox $d/bin/; ln -s busybox $d/bin/true
tar -C $d -c . | docker import - kiln-bench-tiny >/dev/null; rm -rf $d
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
for i in $(seq 1 ${RUNS}); do t=$(date +%s%N); docker run --rm kiln-bench-tiny /bin/true; echo "bridge $(ms $t)"; done
for i in $(seq 1 ${RUNS}); do t=$(date +%s%N); docker run --rm --network none kiln-bench-tiny /bin/true; echo "none $(ms $t)"; done
`;

export interface GuestDockerResult {
  first: Summary;
  later: Summary;
  laterNone: Summary;
  imageRootfsBytes: number | null;
  imageRootfsAllocatedBytes: number | null;
  /** Median milliseconds per phase of a later bridge run (dockerd debug log), last sandbox. */
  breakdown: Breakdown;
}

/** The image the daemon runs: its rootfs.ext4's apparent and allocated sizes. */
function imageSize(hash: string | undefined): { apparent: number | null; allocated: number | null } {
  if (!hash) return { apparent: null, allocated: null };
  try {
    const m = JSON.parse(readFileSync(join(IMAGE_STATE_DIR, 'images', hash, 'manifest.json'), 'utf8')) as { rootfs: string };
    const st = statSync(m.rootfs);
    return { apparent: st.size, allocated: st.blocks * 512 };
  } catch {
    return { apparent: null, allocated: null };
  }
}

export async function benchGuestDocker(fx: DaemonFixture, log: (s: string) => void): Promise<GuestDockerResult> {
  const info = await fx.client.call<{ image?: { hash?: string } }>('GET', '/v1/info');
  const size = imageSize(info.image?.hash);
  if (size.apparent !== null) log(`base image ${info.image?.hash}: rootfs ${(size.apparent / 2 ** 20).toFixed(0)} MiB (${((size.allocated ?? 0) / 2 ** 20).toFixed(0)} MiB allocated)`);
  const first: number[] = [];
  const later: number[] = [];
  const laterNone: number[] = [];
  let breakdown: Breakdown = [];
  for (let s = 0; s < SANDBOXES; s++) {
    const sb = await fx.client.create({});
    try {
      const r = await fx.sh(sb.id, SCRIPT, 600_000);
      if (r.code !== 0) throw new Error(`in-guest docker run failed (exit ${r.code}): ${r.all.slice(-2000)}`);
      const rows = r.out.trim().split('\n').map((l) => l.split(' ') as [string, string]);
      const bridge = rows.filter(([m]) => m === 'bridge').map(([, v]) => Number(v));
      first.push(bridge[0] ?? NaN);
      later.push(...bridge.slice(1));
      laterNone.push(...rows.filter(([m]) => m === 'none').map(([, v]) => Number(v)));
      log(`  sandbox ${s + 1}: first ${bridge[0]} ms, then ${bridge.slice(1).join(' ')} ms; --network none ${rows.filter(([m]) => m === 'none').map(([, v]) => v).join(' ')} ms`);
      if (s === SANDBOXES - 1) {
        const b = await fx.sh(sb.id, breakdownScript('kiln-bench-tiny', BREAKDOWN_RUNS), 600_000);
        if (b.code !== 0) throw new Error(`docker run breakdown failed (exit ${b.code}): ${b.all.slice(-2000)}`);
        breakdown = medianBreakdown(parseBreakdowns(b.out));
        log(`  where a later bridge run's time goes (median of ${BREAKDOWN_RUNS}, dockerd debug log on):`);
        for (const [phase, ms] of breakdown) log(`    ${phase.padEnd(38)} ${String(ms).padStart(6)} ms`);
      }
    } finally {
      await fx.client.destroy(sb.id);
    }
  }
  return { first: summarize(first), later: summarize(later), laterNone: summarize(laterNone), imageRootfsBytes: size.apparent, imageRootfsAllocatedBytes: size.allocated, breakdown };
}
