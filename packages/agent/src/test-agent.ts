// Test fixture: runs the real bundled agent (dist/kiln-agent.cjs) on a unix socket in a
// temp dir and connects the real AgentClient to it. On failure the agent's stderr is printed.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentClient, AgentError } from '@kiln/protocol';

export const BUNDLE = fileURLToPath(new URL('./kiln-agent.cjs', import.meta.url));
/** The node that runs the agent; KILN_AGENT_NODE checks the bundle on another version (the guest may have Node 18). */
const AGENT_NODE = process.env.KILN_AGENT_NODE || process.execPath;

export interface TestAgent {
  dir: string;
  socket: string;
  proc: ChildProcess;
  stderr(): string;
  connect(): Promise<AgentClient>;
  stop(): Promise<void>;
}

export async function startAgent(extraArgs: string[] = []): Promise<TestAgent> {
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run \`npm run build\` first`);
  const dir = mkdtempSync(join(tmpdir(), 'kiln-agent-test-'));
  const socket = join(dir, 'agent.sock');
  const proc = spawn(AGENT_NODE, [BUNDLE, '--listen-unix', socket, '--docker-socket', join(dir, 'docker.sock'), ...extraArgs], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let err = '';
  proc.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const agent: TestAgent = {
    dir,
    socket,
    proc,
    stderr: () => err,
    connect: () => AgentClient.connect(socket, { timeoutMs: 5000, helloIntervalMs: 50 }),
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await once(proc, 'exit');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  proc.once('exit', (code, signal) => {
    if (code !== null && code !== 0) process.stderr.write(`agent exited ${code} ${signal}\n${err}\n`);
  });
  // Ready once it logs that it listens (or fail if it exits first).
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (err.includes('"msg":"listening"')) done(undefined);
    };
    const onExit = () => done(new Error(`agent exited during start-up:\n${err}`));
    const done = (e: Error | undefined) => {
      proc.stderr?.off('data', check);
      proc.off('exit', onExit);
      if (e) reject(e);
      else resolve();
    };
    proc.stderr?.on('data', check);
    proc.once('exit', onExit);
    check();
  });
  return agent;
}

export const hasCode = (code: string) => (err: unknown) => {
  if (err instanceof AgentError && err.code === code) return true;
  throw new Error(`expected AgentError ${code}, got ${err instanceof AgentError ? err.code : ''} ${String(err)}`);
};

/** True if `pid` exists and is not a zombie (this machine's PID 1 may not reap orphans). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
