// exec and exec.signal. Output is streamed as it is produced (flow-controlled per stream);
// the command runs in its own process group so timeouts, signals and a dropped session
// reach its children too.

import { spawn, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { AgentError, errnoToCode, type ExecArgs, type ExecResult, type StreamSender } from '@kiln/protocol';
import type { ExecEntry, OpContext, OpHandler } from './context.js';
import { spawnPlan } from './spawn-as.js';
import { lookupUser } from './users.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Every live exec's process group, across sessions: the agent kills them all when it exits. */
const liveGroups = new Set<number>();

/** SIGKILLs every running command's process group (synchronous: safe in an 'exit' handler). */
export function killAllExecs(): void {
  for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
  liveGroups.clear();
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // The group is gone already.
  }
}

/** Forwards a child's output into a flow-controlled sender, pausing the pipe while the window is full. */
function pump(from: Readable, to: StreamSender): void {
  from.on('data', (b: Buffer) => {
    if (!to.write(b) && !to.isFinished) from.pause();
  });
  to.on('drain', () => from.resume());
  to.on('destroyed', () => from.resume()); // keep draining so the child never blocks on a dead session
}

/** Feeds host stdin frames to the child, acking each chunk once the pipe took it. */
async function feedStdin(ctx: OpContext, child: ChildProcess): Promise<void> {
  const stdin = child.stdin;
  if (!stdin) return;
  stdin.on('error', () => undefined); // EPIPE when the command does not read its input
  const inbox = ctx.input('stdin');
  try {
    for (;;) {
      const b = await inbox.read();
      if (b === null) break;
      await new Promise<void>((resolve) => stdin.write(b, () => resolve()));
      inbox.ack(b.length);
    }
  } finally {
    stdin.end();
  }
}

export async function resolveCwd(cwd: string | undefined, home: string): Promise<string> {
  if (cwd === undefined) {
    const st = await stat(home).catch(() => undefined);
    return st?.isDirectory() ? home : '/';
  }
  const st = await stat(cwd).catch((err: unknown) => {
    throw new AgentError(errnoToCode(err), `cwd ${cwd}: ${(err as Error).message}`);
  });
  if (!st.isDirectory()) throw new AgentError('NOT_DIRECTORY', `cwd ${cwd} is not a directory`);
  return cwd;
}

export const exec: OpHandler<'exec'> = async (ctx, args) => {
  if ((args.argv === undefined) === (args.shell === undefined)) {
    throw new AgentError('INVALID_ARGUMENT', 'exec: give exactly one of argv or shell');
  }
  // Registered before spawning, so an exec.signal that overtakes the spawn is queued, not lost.
  const entry: ExecEntry = { pgid: undefined, pendingSignals: [] };
  ctx.session.execs.set(ctx.id, entry);
  try {
    return await run(ctx, args, entry);
  } finally {
    if (ctx.session.execs.get(ctx.id) === entry) ctx.session.execs.delete(ctx.id);
  }
};

async function run(ctx: OpContext, args: ExecArgs, entry: ExecEntry): Promise<ExecResult> {
  const user = await lookupUser(args.user);
  const cwd = await resolveCwd(args.cwd, user.home);
  const [file, ...rest] = args.argv ?? ['/bin/sh', '-c', args.shell as string];
  const env = { PATH: DEFAULT_PATH, HOME: user.home, USER: user.name, LOGNAME: user.name, LANG: 'C.UTF-8', ...args.env };
  const started = performance.now();

  let child: ChildProcess;
  try {
    const plan = spawnPlan(file as string, rest, user, args.user, { path: env.PATH ?? DEFAULT_PATH, cwd });
    child = spawn(plan.file, plan.args, {
      cwd,
      env,
      detached: true, // own process group: kill(-pid) reaches the command's children
      stdio: [args.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      ...plan.ids,
    });
  } catch (err) {
    throw new AgentError('INVALID_ARGUMENT', `exec: ${(err as Error).message}`);
  }
  // Spawn failures (ENOENT, EACCES) arrive as an 'error' event instead of 'spawn'.
  const spawnError = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', (err) => resolve(err));
  });
  if (spawnError) {
    const code = errnoToCode(spawnError);
    const what = code === 'NOT_FOUND' ? 'command not found' : 'cannot run command';
    throw new AgentError(code, `${what}: ${file}: ${spawnError.message}`);
  }
  const pgid = child.pid as number;
  entry.pgid = pgid;
  liveGroups.add(pgid);
  child.once('close', () => liveGroups.delete(pgid));
  for (const sig of entry.pendingSignals) killGroup(pgid, sig);

  const stdout = ctx.sender('stdout');
  const stderr = ctx.sender('stderr');
  pump(child.stdout as Readable, stdout);
  pump(child.stderr as Readable, stderr);
  if (args.stdin) feedStdin(ctx, child).catch(() => undefined);

  let timedOut = false;
  const timer =
    args.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          killGroup(pgid, 'SIGKILL');
        }, args.timeoutMs);
  const onAbort = () => killGroup(pgid, 'SIGKILL');
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  child.once('exit', () => {
    // A killed command's escaped children may still hold the pipes; stop waiting for them.
    if (timedOut || ctx.signal.aborted) {
      child.stdout?.destroy();
      child.stderr?.destroy();
    }
  });

  try {
    // 'close' waits for the command's stdio to close too, so no output is lost.
    const [exitCode, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => {
      child.once('close', (code, sig) => resolve([code, sig]));
    });
    if (timedOut) killGroup(pgid, 'SIGKILL'); // stragglers that left the pipes
    stdout.end();
    stderr.end();
    await Promise.all([stdout.drained(), stderr.drained()]);
    if (ctx.signal.aborted) throw ctx.signal.reason;
    return { exitCode, signal, timedOut, durationMs: Math.round(performance.now() - started) };
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

export const execSignal: OpHandler<'exec.signal'> = async (ctx, { execId, signal }) => {
  if (!(signal in constants.signals)) throw new AgentError('INVALID_ARGUMENT', `unknown signal ${signal}`);
  const entry = ctx.session.execs.get(execId);
  if (entry === undefined) throw new AgentError('NOT_FOUND', `no running exec with id ${execId}`);
  if (entry.pgid === undefined) {
    entry.pendingSignals.push(signal as NodeJS.Signals);
    return {};
  }
  try {
    process.kill(-entry.pgid, signal as NodeJS.Signals);
  } catch (err) {
    throw new AgentError(errnoToCode(err), `signalling exec ${execId}: ${(err as Error).message}`);
  }
  return {};
};
