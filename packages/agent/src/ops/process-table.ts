// The agent's background processes, by guest pid. The table belongs to the agent, not to a
// host session: a new session, a dropped connection or a request that timed out never kills
// a process (only a signal, its timeout, or the agent's own exit do). Exited processes keep
// their status for `retentionMs` (at most `maxExited` of them, oldest forgotten first), and
// their output while the exited ones together hold less than `exitedBufferBytes`.

import { EventEmitter } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { AgentError, type ProcInfo } from '@kiln/protocol';
import { OutputRing } from './output-ring.js';

export interface ProcessLimits {
  ringBytes: number;
  maxRunning: number;
  maxExited: number;
  retentionMs: number;
  exitedBufferBytes: number;
}

export const DEFAULT_LIMITS: ProcessLimits = {
  ringBytes: 1024 * 1024,
  maxRunning: 256,
  maxExited: 256,
  retentionMs: 15 * 60_000,
  exitedBufferBytes: 16 * 1024 * 1024,
};

export interface Proc {
  pid: number;
  tag: string | null;
  argv: string[];
  cwd: string;
  user: string;
  pty: boolean;
  child: ChildProcess;
  ring: OutputRing;
  /** Emits 'output' after each append and 'exit' once. */
  events: EventEmitter;
  stdin: Writable | null;
  /** The PTY helper's control pipe (fd 3): "ROWS COLS\n" lines. */
  control: Writable | null;
  exited: boolean;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  startedAt: number;
  endedAt: number | null;
}

const MAX_ARGS_SHOWN = 32;
const MAX_ARG_CHARS = 256;

function shortArgv(argv: string[]): string[] {
  const shown = argv.slice(0, MAX_ARGS_SHOWN).map((a) => (a.length > MAX_ARG_CHARS ? `${a.slice(0, MAX_ARG_CHARS)}…` : a));
  return argv.length > MAX_ARGS_SHOWN ? [...shown, '…'] : shown;
}

export function infoOf(p: Proc): ProcInfo {
  return {
    pid: p.pid,
    tag: p.tag,
    argv: shortArgv(p.argv),
    cwd: p.cwd,
    user: p.user,
    pty: p.pty,
    state: p.exited ? 'exited' : 'running',
    exitCode: p.exitCode,
    signal: p.signal,
    timedOut: p.timedOut,
    startedAt: p.startedAt,
    endedAt: p.endedAt,
    outputBytes: p.ring.end,
    droppedBytes: p.ring.start,
    stdinOpen: p.stdin !== null && !p.exited,
  };
}

export class ProcessTable {
  private readonly procs = new Map<number, Proc>();
  /** Order of the exits (endedAt may tie within a millisecond). */
  private readonly exitSeq = new WeakMap<Proc, number>();
  private exits = 0;

  constructor(readonly limits: ProcessLimits = DEFAULT_LIMITS) {}

  get(pid: number): Proc {
    this.prune();
    const p = this.procs.get(pid);
    if (!p) throw new AgentError('NOT_FOUND', `no background process ${pid}`);
    return p;
  }

  list(): Proc[] {
    this.prune();
    return [...this.procs.values()].sort((a, b) => a.startedAt - b.startedAt || a.pid - b.pid);
  }

  /** Throws RESOURCE_EXHAUSTED when `maxRunning` processes run already. */
  checkRoom(): void {
    let running = 0;
    for (const p of this.procs.values()) if (!p.exited) running++;
    if (running >= this.limits.maxRunning) {
      throw new AgentError('RESOURCE_EXHAUSTED', `${running} background processes are running (the limit is ${this.limits.maxRunning})`);
    }
  }

  /** Adds a started process (replacing an exited one whose pid the kernel reused). */
  add(p: Proc): void {
    this.procs.set(p.pid, p);
    p.events.setMaxListeners(0);
  }

  /** Records the exit and applies the retention limits. */
  exited(p: Proc, exitCode: number | null, signal: string | null): void {
    if (p.exited) return;
    p.exited = true;
    p.exitCode = exitCode;
    p.signal = signal;
    p.endedAt = Date.now();
    this.exitSeq.set(p, ++this.exits);
    p.stdin = null;
    p.control = null;
    p.events.emit('exit');
    this.prune();
  }

  /** SIGKILLs every running process group (synchronous: safe in an 'exit' handler). */
  killAll(): void {
    for (const p of this.procs.values()) {
      if (p.exited) continue;
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }

  private prune(): void {
    const now = Date.now();
    const exited = [...this.procs.values()].filter((p) => p.exited).sort((a, b) => (this.exitSeq.get(b) ?? 0) - (this.exitSeq.get(a) ?? 0));
    let held = 0;
    exited.forEach((p, i) => {
      if (i >= this.limits.maxExited || now - (p.endedAt ?? now) > this.limits.retentionMs) {
        if (this.procs.get(p.pid) === p) this.procs.delete(p.pid);
        return;
      }
      held += p.ring.end - p.ring.start;
      if (held > this.limits.exitedBufferBytes) p.ring.release();
    });
  }
}
