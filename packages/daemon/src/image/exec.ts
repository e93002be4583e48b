/** Runs a build command, failing with an ImageBuildError that carries the tail of its output. */
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { ImageBuildError } from './errors.js';
import { toolSearchPath } from './host-tools.js';

export interface RunOptions {
  cwd?: string;
  /** extra environment (PATH defaults to the tool search path, LC_ALL to C) */
  env?: Record<string, string>;
  /** written to the command's stdin */
  input?: string | Buffer;
  /** pipe stdout here instead of collecting it */
  stdout?: Writable;
}

const TAIL_BYTES = 4000;

/** Runs `cmd args`; resolves with its stdout (empty when piped). */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, PATH: toolSearchPath(), LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    if (opts.stdout) child.stdout.pipe(opts.stdout);
    else child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => {
      err = (err + b.toString()).slice(-TAIL_BYTES);
    });
    child.on('error', (cause) =>
      reject(new ImageBuildError(`${cmd} could not be started: ${cause.message}`, { cause })),
    );
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString();
      if (code === 0) return resolve(stdout);
      const tail = (err || stdout).slice(-TAIL_BYTES).trim();
      reject(
        new ImageBuildError(`${cmd} ${args.join(' ')} failed (${signal ?? `exit ${code}`}): ${tail.split('\n').slice(-3).join(' | ')}`, {
          details: { cmd, args, code, signal, output: tail },
        }),
      );
    });
    // A command that exits without reading its input (cp, mkfs) makes this write fail with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}
