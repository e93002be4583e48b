/**
 * The real guest agent (packages/agent/dist/kiln-agent.cjs) as a host process on a unix socket,
 * for API tests of the routes that reach into the guest (files, exec, signals) without a VM.
 * Only the file, exec and background-process operations go to it: configure, network and the health checks stay
 * fake, so nothing touches the host's clock, hostname or interfaces.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { AgentClient } from '@kiln/protocol';
import type { ConnectAgent, GuestAgent } from '../sandbox/guest-agent.js';
import { fakeAgent } from './fakes.js';

const BUNDLE = resolve(import.meta.dirname, '../../../agent/dist/kiln-agent.cjs');
const PTY_HELPER = resolve(import.meta.dirname, '../../../agent/dist/kiln-pty');

export interface RealAgent {
  /** A scratch directory the tests work in (the agent sees the host's file system). */
  dir: string;
  connectAgent: ConnectAgent;
  stop(): Promise<void>;
}

export async function startRealAgent(): Promise<RealAgent> {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-real-agent-'));
  const socket = join(dir, 'agent.sock');
  const proc = spawn(process.execPath, [BUNDLE, '--listen-unix', socket, '--docker-socket', join(dir, 'docker.sock'), '--pty-helper', PTY_HELPER], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise<void>((ok, fail) => {
    proc.stderr.on('data', (b: Buffer) => {
      log += b.toString();
      if (log.includes('"msg":"listening"')) ok();
    });
    proc.once('exit', () => fail(new Error(`agent exited during start-up: ${log}`)));
  });
  const clients: AgentClient[] = [];
  return {
    dir,
    connectAgent: async () => {
      const real = await AgentClient.connect(socket, { timeoutMs: 5000, helloIntervalMs: 50 });
      clients.push(real);
      const fake = fakeAgent();
      const ops = ['exec', 'writeFile', 'readFile', 'stat', 'list', 'mkdir', 'remove', 'rename', 'proc'] as const;
      // Closing the sandbox's agent closes its connection too: the agent serves one client at a time.
      const close = () => {
        real.close();
        fake.close();
      };
      const agent = { ...fake, close, ...Object.fromEntries(ops.map((op) => [op, real[op].bind(real)])) } as unknown as GuestAgent;
      return agent;
    },
    stop: async () => {
      for (const c of clients) c.close();
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await once(proc, 'exit');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
