/**
 * What a sandbox can leave on the host, looked up by name (the network engineer's naming:
 * netns kiln-<hex>, links kt/kv/ku<hex>, nft tables kiln_<hex>) and by the VMM marker.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const sh = (cmd: string, args: string[]): string => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
};

/** Everything of sandbox `id` still on the host (empty = nothing leaked). */
export function leftovers(stateDir: string, id: string): string[] {
  const hex = id.slice(3, 15); // the host key (sandbox/ids.ts)
  const out: string[] = [];
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`kiln-${id}`)) out.push(`process ${pid}`);
    } catch {
      // raced with exit
    }
  }
  if (existsSync(join(stateDir, 'sandboxes', id))) out.push(`run dir ${join(stateDir, 'sandboxes', id)}`);
  if (sh('ip', ['netns', 'list']).includes(`kiln-${hex}`)) out.push(`netns kiln-${hex}`);
  for (const l of sh('ip', ['-o', 'link', 'show']).split('\n')) if (new RegExp(`k[tvu]${hex}`).test(l)) out.push(`link ${l.split(':')[1]?.trim()}`);
  if (sh('nft', ['list', 'tables']).includes(`kiln_${hex}`)) out.push(`nft table kiln_${hex}`);
  return out;
}

/** Open file descriptors of a process. */
export const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs: number, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== null && v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
}
