/**
 * What a fixture's sandboxes left on the host after its kilnd destroyed them and stopped: VMM
 * and resolver processes, network namespaces, links, nft tables, cgroups, run dirs and sockets.
 * Scoped to the sandbox ids one fixture created (other kilnds run on this machine at the same
 * time), found by the names kiln gives everything it creates (the sandbox id, or its hex part).
 * DaemonFixture.close() fails the suite on any of it, after removing it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import type { KilnClient } from '@kiln/cli';
import { leftovers } from './lifecycle-leftovers.js';

/** Where a VM's cgroup can be: cgroup v2, or each v1 hierarchy kiln uses. */
const CGROUP_PARENTS = ['/sys/fs/cgroup/kiln', ...['memory', 'cpu', 'cpu,cpuacct', 'pids'].map((h) => `/sys/fs/cgroup/${h}/kiln`)];
/** State-dir entries that outlive a sandbox by design (guest logs, audit) or are shared. */
const KEPT = new Set(['logs', 'audit', 'images', 'templates']);

const quiet = (cmd: string, args: string[]): string => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
};

/** Processes (other than this one) whose command line names the sandbox. */
function processesNaming(id: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(id)) pids.push(Number(name));
    } catch {
      // raced with exit
    }
  }
  return pids;
}

/** Paths under the state dir (kept parts excluded) whose name contains the id: run dirs, sockets, disks. */
function pathsNaming(stateDir: string, id: string, dir = stateDir, depth = 0, out: string[] = []): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    if (depth === 0 && KEPT.has(name)) continue;
    const p = join(dir, name);
    if (name.includes(id)) out.push(p);
    else if (depth < 3 && lstatSync(p, { throwIfNoEntry: false })?.isDirectory()) pathsNaming(stateDir, id, p, depth + 1, out);
  }
  return out;
}

/** Everything of sandbox `id` still on the host, one line each (empty = nothing leaked). */
export function sandboxLeftovers(stateDir: string, id: string): string[] {
  const found = new Set(leftovers(stateDir, id).filter((l) => !l.startsWith('process ') && !l.startsWith('run dir ')));
  for (const pid of processesNaming(id)) found.add(`process ${pid} (${quiet('ps', ['-o', 'comm=', '-p', String(pid)]).trim()})`);
  for (const parent of CGROUP_PARENTS) if (existsSync(join(parent, id))) found.add(`cgroup ${join(parent, id)}`);
  for (const p of pathsNaming(stateDir, id)) found.add(`path ${p}`);
  return [...found];
}

/** Best effort: removes what sandboxLeftovers() found, so a failing suite leaves the machine clean. */
export function removeLeftovers(stateDir: string, id: string): void {
  const hex = id.slice(3);
  for (const pid of processesNaming(id)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  quiet('ip', ['netns', 'delete', `kiln-${hex}`]);
  for (const prefix of ['kt', 'kv', 'ku']) quiet('ip', ['link', 'delete', `${prefix}${hex}`]);
  quiet('nft', ['delete', 'table', 'inet', `kiln_${hex}`]);
  quiet('nft', ['delete', 'table', 'ip', `kiln_${hex}`]);
  for (const parent of CGROUP_PARENTS) {
    try {
      rmdirSync(join(parent, id));
    } catch {
      // absent, or still has a process for a moment
    }
  }
  // Paths under the state dir go with it (the fixture removes the whole directory).
  void stateDir;
}

/** Polls until nothing of `ids` is left or `settleMs` passed (teardown finishes asynchronously); what is left. */
export async function settledLeftovers(stateDir: string, ids: Iterable<string>, settleMs = 10_000): Promise<Map<string, string[]>> {
  const deadline = Date.now() + settleMs;
  for (;;) {
    const left = new Map<string, string[]>();
    for (const id of ids) {
      const l = sandboxLeftovers(stateDir, id);
      if (l.length) left.set(id, l);
    }
    if (left.size === 0 || Date.now() >= deadline) return left;
    await new Promise((r) => setTimeout(r, 250));
  }
}

const SANDBOX_ID = /\bsb-[0-9a-f]{12}\b/g;

/**
 * The sandbox ids one fixture's kilnd handed out: noted as they pass through its client (create,
 * get, list) and the CLI's output, and collected from kilnd's own record (host events) and its
 * state dir (logs/, sandboxes/) for sandboxes made any other way.
 */
export class SandboxIdLedger {
  readonly ids = new Set<string>();

  constructor(
    private readonly stateDir: string,
    private readonly client: KilnClient,
  ) {
    const c = client;
    const create = c.create.bind(c);
    const list = c.list.bind(c);
    const get = c.get.bind(c);
    c.create = async (...a: Parameters<KilnClient['create']>) => this.seen(await create(...a));
    c.get = async (...a: Parameters<KilnClient['get']>) => this.seen(await get(...a));
    c.list = async () => {
      const all = await list();
      for (const sb of all) this.seen(sb);
      return all;
    };
  }

  private seen<T extends { id: string }>(sb: T): T {
    this.ids.add(sb.id);
    return sb;
  }

  noteOutput(text: string): void {
    for (const m of text.matchAll(SANDBOX_ID)) this.ids.add(m[0]);
  }

  async collect(daemonRunning: boolean): Promise<void> {
    if (daemonRunning) {
      const r = await this.client.call<{ events: Array<{ sandboxId: string }> }>('GET', '/v1/events').catch(() => ({ events: [] }));
      for (const e of r.events) this.noteOutput(e.sandboxId);
    }
    for (const dir of ['logs', 'sandboxes']) {
      const d = join(this.stateDir, dir);
      if (existsSync(d)) for (const name of readdirSync(d)) this.noteOutput(name);
    }
  }
}
