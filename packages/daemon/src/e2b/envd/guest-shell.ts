/**
 * Runs a short command in the guest as a given user through the agent's `exec` op and
 * collects its output: the envd filesystem calls use coreutils/findutils as the calling user,
 * so ownership, modes and permission errors are the guest's own (as with envd, which runs
 * them under the user's credentials).
 */
import type { GuestAgent } from '../../sandbox/guest-agent.js';
import { ConnectError } from './connect-codec.js';

export interface ShellResult {
  exitCode: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Most output collected from one helper command. */
const MAX_OUTPUT = 64 * 1024 * 1024;

export async function runAs(agent: GuestAgent, user: string, argv: string[], opts: { cwd?: string; stdin?: AsyncIterable<Buffer> } = {}): Promise<ShellResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let n = 0;
  const take = (into: Buffer[]) => (b: Buffer) => {
    n += b.length;
    if (n <= MAX_OUTPUT) into.push(b);
  };
  const h = agent.exec({ argv, user, ...(opts.cwd ? { cwd: opts.cwd } : {}), ...(opts.stdin ? { stdin: true } : {}) }, { onStdout: take(out), onStderr: take(err) });
  if (opts.stdin) {
    try {
      for await (const chunk of opts.stdin) await h.writeStdin(chunk);
      h.endStdin();
    } catch (e) {
      await h.signal('SIGKILL').catch(() => undefined);
      await h.result.catch(() => undefined);
      throw e;
    }
  }
  const r = await h.result;
  if (n > MAX_OUTPUT) throw new ConnectError('resource_exhausted', `guest command output exceeds ${MAX_OUTPUT} bytes`);
  return { exitCode: r.exitCode, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8').trim() };
}

/** A failed helper command as a Connect error: missing paths are not_found, permissions permission_denied. */
export function shellError(r: ShellResult, what: string): ConnectError {
  const msg = `${what}: ${r.stderr || `exit code ${r.exitCode}`}`;
  if (/No such file or directory/i.test(r.stderr)) return new ConnectError('not_found', msg);
  if (/Permission denied|Operation not permitted/i.test(r.stderr)) return new ConnectError('permission_denied', msg);
  if (/File exists/i.test(r.stderr)) return new ConnectError('already_exists', msg);
  if (/Not a directory|Is a directory|Directory not empty|cannot move .* to a subdirectory of itself/i.test(r.stderr)) return new ConnectError('invalid_argument', msg);
  if (/unknown user|invalid user|no such user/i.test(r.stderr)) return new ConnectError('invalid_argument', msg);
  return new ConnectError('internal', msg);
}
