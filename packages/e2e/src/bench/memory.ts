import { readFileSync } from 'node:fs';

/** RSS and PSS of a process in MiB, from /proc/PID/smaps_rollup. */
export function processMemoryMiB(pid: number): { rssMiB: number; pssMiB: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rssMiB: kb('Rss') / 1024, pssMiB: kb('Pss') / 1024 };
}
