// The agent's resident helper, kiln-guestctl (native/kiln-guestctl.c): the system calls Node.js
// cannot make (clock_settime, RNDADDENTROPY, interface and route ioctls). It is started once
// when the agent starts, so a snapshot already holds it running: a restored clone is made
// unique with a few requests on a pipe instead of process spawns that TCG must translate anew.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { findPortOnce } from './virtio-port.js';
import { AgentError } from '@kiln/protocol';
import { errorFields, log } from './log.js';

interface Pending {
  request: string;
  resolve: (value: string) => void;
  reject: (err: AgentError) => void;
}

/** One running helper: its replies match its own requests only. */
interface Proc {
  child: ChildProcess;
  pending: Pending[];
  buffered: string;
}

export class GuestCtl {
  private proc: Proc | null = null;

  constructor(readonly path: string) {}

  /** Starts the helper now (at agent start, so it is part of every snapshot). */
  start(): Proc {
    if (this.proc) return this.proc;
    const child = spawn(this.path, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    const proc: Proc = { child, pending: [], buffered: '' };
    this.proc = proc;
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => onData(proc, chunk));
    child.stdin?.on('error', () => undefined); // a dead helper shows as 'exit'
    child.on('error', (err) => log('warn', 'kiln-guestctl failed', errorFields(err)));
    child.on('exit', (code, signal) => {
      if (this.proc === proc) this.proc = null;
      for (const p of proc.pending.splice(0)) p.reject(new AgentError('INTERNAL', `kiln-guestctl exited (${signal ?? code}) during "${p.request.split(' ')[0]}"`));
      log('warn', 'kiln-guestctl exited; restarted on the next request', { code, signal });
    });
    return proc;
  }

  /** Ends the helper (tests); the next request starts a new one. */
  stop(): void {
    const proc = this.proc;
    this.proc = null;
    proc?.child.kill('SIGKILL');
  }

  /** Sends one request ("clock 1700000000 0", "link eth0 up", …); resolves on "ok". */
  async call(request: string): Promise<void> {
    await this.callValue(request);
  }

  /** Like call(), resolving with the reply's value ("ok VALUE"). */
  callValue(request: string): Promise<string> {
    if (request.includes('\n')) return Promise.reject(new AgentError('INVALID_ARGUMENT', 'newline in a guestctl request'));
    const proc = this.start();
    return new Promise((resolve, reject) => {
      proc.pending.push({ request, resolve, reject });
      proc.child.stdin?.write(`${request}\n`);
    });
  }
}

function onData(proc: Proc, chunk: string): void {
  proc.buffered += chunk;
  let nl: number;
  while ((nl = proc.buffered.indexOf('\n')) >= 0) {
    const line = proc.buffered.slice(0, nl);
    proc.buffered = proc.buffered.slice(nl + 1);
    const p = proc.pending.shift();
    if (!p) continue;
    if (line === 'ok' || line.startsWith('ok ')) p.resolve(line.slice(3));
    else p.reject(new AgentError('INTERNAL', `${p.request.split(' ')[0]}: ${line.replace(/^err \d+ /, '')}`));
  }
}

export const GUESTCTL_PORT_NAME = 'org.kiln.guestctl';
const RESPAWN_DELAY_MS = 1000;

/**
 * Starts `kiln-guestctl --port` on the org.kiln.guestctl virtio port, through which kilnd makes a
 * restored clone unique directly (the agent is not on that path). Restarted if it exits. No-op
 * where the VM has no such port or the helper is not used.
 */
export async function servePortHelper(config: { sysRoot: string; guestCtlPath: string }): Promise<void> {
  if (!guestCtl(config)) return;
  const port = await findPortOnce(GUESTCTL_PORT_NAME);
  if (!port) {
    log('info', 'no guestctl port; personalization goes through the agent');
    return;
  }
  const start = (): void => {
    const child = spawn(config.guestCtlPath, ['--port', port], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', (err) => log('warn', 'kiln-guestctl --port failed', errorFields(err)));
    child.on('exit', (code, signal) => {
      log('warn', 'kiln-guestctl --port exited; restarting', { code, signal });
      setTimeout(start, RESPAWN_DELAY_MS);
    });
  };
  start();
}

let instance: GuestCtl | null | undefined;

/**
 * The helper, or null where it is not used: tests that run the agent on a host with a
 * --sys-root, and agents without the binary (then the ops spawn `date`/`ip` instead).
 */
export function guestCtl(config: { sysRoot: string; guestCtlPath: string }): GuestCtl | null {
  if (instance === undefined) {
    instance = config.sysRoot === '' && config.guestCtlPath !== '' && existsSync(config.guestCtlPath) ? new GuestCtl(config.guestCtlPath) : null;
  }
  return instance;
}
