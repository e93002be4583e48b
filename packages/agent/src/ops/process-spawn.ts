// Starts a background process: a plain one (pipes) or one on a PTY (through the kiln-pty
// helper: its stdin/stdout relay the terminal, fd 3 takes "ROWS COLS" resize lines). Its
// output is read into the ring as it comes, never paused: a process is never blocked by
// the readers of its output.

import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { AgentError, errnoToCode, type ProcStartArgs } from '@kiln/protocol';
import { DEFAULT_PATH, resolveCwd } from './exec.js';
import { spawnPlan } from './spawn-as.js';
import { OutputRing, type OutputType } from './output-ring.js';
import type { Proc, ProcessTable } from './process-table.js';
import { lookupUser } from './users.js';

/** After the exit, how long to wait for the pipes to close (an escaped child may hold them). */
const CLOSE_GRACE_MS = 500;

export async function startProcess(table: ProcessTable, args: ProcStartArgs, ptyHelper: string): Promise<Proc> {
  if (args.argv !== undefined && args.shell !== undefined) throw new AgentError('INVALID_ARGUMENT', 'proc.start: give at most one of argv or shell');
  if (args.argv === undefined && args.shell === undefined && !args.pty) throw new AgentError('INVALID_ARGUMENT', 'proc.start: give argv or shell');
  table.checkRoom();
  const user = await lookupUser(args.user);
  const cwd = await resolveCwd(args.cwd, user.home);
  const argv = args.argv ?? (args.shell !== undefined ? ['/bin/sh', '-c', args.shell] : [user.shell, '-l']);
  const env: Record<string, string> = {
    PATH: DEFAULT_PATH,
    HOME: user.home,
    USER: user.name,
    LOGNAME: user.name,
    SHELL: user.shell,
    LANG: 'C.UTF-8',
    ...(args.pty ? { TERM: args.term ?? 'xterm-256color' } : {}),
    ...args.env,
  };
  if (args.pty && !existsSync(ptyHelper)) throw new AgentError('INTERNAL', `the PTY helper ${ptyHelper} is missing`);
  const [file, ...rest] = args.pty ? [ptyHelper, String(args.pty.rows), String(args.pty.cols), ...argv] : argv;

  let child: ChildProcess;
  try {
    const plan = spawnPlan(file as string, rest, user, args.user, { path: env.PATH ?? DEFAULT_PATH, cwd });
    child = spawn(plan.file, plan.args, {
      cwd,
      env,
      detached: true, // own process group: signals and the timeout reach its children
      stdio: args.pty ? ['pipe', 'pipe', 'pipe', 'pipe'] : [args.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      ...plan.ids,
    });
  } catch (err) {
    throw new AgentError('INVALID_ARGUMENT', `proc.start: ${(err as Error).message}`);
  }
  const spawnError = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err) => resolve(err));
  });
  if (spawnError) {
    const code = errnoToCode(spawnError);
    throw new AgentError(code, `${code === 'NOT_FOUND' ? 'command not found' : 'cannot run command'}: ${file}: ${spawnError.message}`);
  }

  const p: Proc = {
    pid: child.pid as number,
    tag: args.tag ?? null,
    argv,
    cwd,
    user: user.name,
    pty: args.pty !== undefined,
    child,
    ring: new OutputRing(table.limits.ringBytes),
    events: new EventEmitter(),
    stdin: (child.stdin as Writable | null) ?? null,
    control: args.pty ? ((child.stdio[3] as Writable | null) ?? null) : null,
    exited: false,
    exitCode: null,
    signal: null,
    timedOut: false,
    startedAt: Date.now(),
    endedAt: null,
  };
  p.stdin?.on('error', () => undefined); // EPIPE once the process stopped reading
  p.control?.on('error', () => undefined);
  table.add(p);

  const collect = (from: Readable | null, type: OutputType) => {
    from?.on('data', (b: Buffer) => {
      p.ring.append(type, b);
      p.events.emit('output');
    });
  };
  collect(child.stdout, args.pty ? 'pty' : 'stdout');
  collect(child.stderr, 'stderr');

  const timer =
    args.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          p.timedOut = true;
          killGroup(p.pid, 'SIGKILL');
        }, args.timeoutMs);
  child.once('exit', (code, sig) => {
    clearTimeout(timer);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(grace);
      table.exited(p, code, sig);
    };
    // 'close' follows once the pipes are drained: no output is lost. An escaped child that
    // keeps them open does not hold the exit back for long.
    const grace = setTimeout(() => {
      child.stdout?.destroy();
      child.stderr?.destroy();
      finish();
    }, CLOSE_GRACE_MS);
    child.once('close', finish);
  });
  return p;
}

export function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone
  }
}
