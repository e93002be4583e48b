/** A process's CPU time and resident memory from /proc (Linux), and a file's allocated bytes. */
import { readFileSync, statSync } from 'node:fs';

/** USER_HZ: the unit of /proc/PID/stat times. 100 on every Linux architecture kiln runs on. */
export const CLOCK_TICKS_PER_SECOND = 100;

export interface ProcUsage {
  /** User + system CPU time of all its threads, in seconds. */
  cpuSeconds: number;
  rssBytes: number;
}

/** User + system CPU time of all the process's threads, in seconds (from /proc/PID/stat alone). */
export function readCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // after the comm field: f[0] is field 3 (state); utime and stime are fields 14 and 15.
    const ticks = Number(f[11]) + Number(f[12]);
    return Number.isFinite(ticks) ? ticks / CLOCK_TICKS_PER_SECOND : null;
  } catch {
    return null;
  }
}

export function readProcUsage(pid: number): ProcUsage | null {
  const cpuSeconds = readCpuSeconds(pid);
  if (cpuSeconds === null) return null;
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? { cpuSeconds, rssBytes: Number(m[1]) * 1024 } : null;
  } catch {
    return null;
  }
}

/** Allocated (not apparent) size of a sparse file: what it really takes on the host disk. */
export function allocatedBytes(path: string): { allocatedBytes: number; sizeBytes: number } | null {
  try {
    const st = statSync(path);
    return { allocatedBytes: st.blocks * 512, sizeBytes: st.size };
  } catch {
    return null;
  }
}
