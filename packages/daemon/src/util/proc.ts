/**
 * Process identity without trusting a bare pid: a pid is only "ours" while its start time
 * (field 22 of /proc/PID/stat) and its command line still match what we recorded. A recycled
 * pid therefore never costs an innocent process its life.
 */
import { readFileSync, readdirSync } from 'node:fs';

export interface ProcessIdentity {
  pid: number;
  /** Start time in clock ticks since boot, from /proc/PID/stat. */
  startTime: number;
}

/** Whether a process with this pid exists (EPERM: it does, owned by someone else). */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function readStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces and parentheses: parse after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); field 22 is rest[19].
    const state = rest[0];
    if (state === 'Z' || state === 'X') return null;
    const v = Number(rest[19]);
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

export function readCmdline(pid: number): string[] | null {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`);
    if (raw.length === 0) return null;
    return raw.toString('utf8').split('\0').filter((s) => s.length > 0);
  } catch {
    return null;
  }
}

/** True while `id` names the same live process (not a zombie, not a recycled pid). */
export function isSameProcess(id: ProcessIdentity, marker?: string): boolean {
  const st = readStartTime(id.pid);
  if (st === null || st !== id.startTime) return false;
  if (marker !== undefined) {
    const cmd = readCmdline(id.pid);
    if (cmd === null || !cmd.some((a) => a.includes(marker))) return false;
  }
  return true;
}

/** Sends a signal only if the pid still names the recorded process. Returns whether it was sent. */
export function signalProcess(id: ProcessIdentity, signal: NodeJS.Signals, marker?: string): boolean {
  if (!isSameProcess(id, marker)) return false;
  try {
    process.kill(id.pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Every live process whose command line contains `needle` (used to find orphaned VMMs). */
export function findProcesses(needle: string): Array<ProcessIdentity & { cmdline: string[] }> {
  const found: Array<ProcessIdentity & { cmdline: string[] }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    const cmdline = readCmdline(pid);
    if (cmdline === null || !cmdline.some((a) => a.includes(needle))) continue;
    const startTime = readStartTime(pid);
    if (startTime === null) continue;
    found.push({ pid, startTime, cmdline });
  }
  return found;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
