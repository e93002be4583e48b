import { readFileSync } from 'node:fs';

/** USER_HZ, the unit of /proc/PID/stat times (100 on every Linux kiln runs on). */
const TICKS_PER_SECOND = 100;

/** CPU time (user + system, all threads) of a process in seconds, from /proc/PID/stat; 0 if it is gone. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** CPU used by these processes together over `windowMs`, in % of one core. */
export async function cpuPercentOver(pids: number[], windowMs: number): Promise<number> {
  const sum = () => pids.reduce((a, p) => a + processCpuSeconds(p), 0);
  const before = sum();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, windowMs));
  return ((sum() - before) / ((performance.now() - t0) / 1000)) * 100;
}
