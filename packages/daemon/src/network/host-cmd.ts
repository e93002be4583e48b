/** Runs the host's network tools (ip, nft, dnsmasq), optionally inside a network namespace. */
import { execFile } from 'node:child_process';
import { KilnError } from '../errors.js';

const PATH = [process.env.PATH ?? '', '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(Boolean).join(':');

export interface CmdOptions {
  /** Run inside this named network namespace (`ip netns exec`). */
  netns?: string;
  /** Written to stdin. */
  input?: string;
  /** Default 20 s. */
  timeoutMs?: number;
}

export class NetworkCommandError extends KilnError {
  constructor(
    readonly command: string,
    readonly stderr: string,
    cause?: unknown,
  ) {
    super('NETWORK_COMMAND_FAILED', `\`${command}\` failed: ${stderr.trim().slice(-800) || 'no output'}`, { status: 500, cause });
  }
}

/** Runs `cmd args` and resolves with stdout; rejects with NetworkCommandError. */
export function hostCmd(cmd: string, args: readonly string[], opts: CmdOptions = {}): Promise<string> {
  const [file, argv] = opts.netns ? ['ip', ['netns', 'exec', opts.netns, cmd, ...args]] : [cmd, [...args]];
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      argv,
      { env: { ...process.env, PATH, LC_ALL: 'C' }, timeout: opts.timeoutMs ?? 20_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new NetworkCommandError([file, ...argv].join(' ').slice(0, 300), String(stderr || err.message), err));
        else resolve(stdout);
      },
    );
    child.stdin?.on('error', () => undefined); // a tool that exits without reading its input
    child.stdin?.end(opts.input ?? '');
  });
}

/** `nft -f -` with a script (one atomic transaction). */
export function nftApply(script: string, netns?: string): Promise<string> {
  return hostCmd('nft', ['-f', '-'], { input: script, ...(netns ? { netns } : {}) });
}

/** Like hostCmd, but resolves null instead of failing (for cleanup of what may be gone). */
export async function tryCmd(cmd: string, args: readonly string[], opts: CmdOptions = {}): Promise<string | null> {
  try {
    return await hostCmd(cmd, args, opts);
  } catch {
    return null;
  }
}
