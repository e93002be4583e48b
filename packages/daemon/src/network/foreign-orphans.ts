/**
 * `kiln gc` beyond this kilnd's own records: kiln-named network objects on the host (netns
 * kiln-*, links kt/kv/ku*, nft tables kiln_*) and sandbox resolvers (dnsmasq) that no sandbox
 * row of this kilnd owns, left by another instance (another state directory) that is gone.
 *
 * Removed only when provably orphaned:
 *   - a netns whose addresses lie in this kilnd's subnet (this kilnd holds that subnet's lock,
 *     so no other live kilnd can use it), or in no subnet that a live kilnd holds (subnet-lock.ts);
 *     a netns without addresses (another kilnd may be building it right now) only when no
 *     other kilnd is alive at all. Whatever runs inside (a VMM, a resolver) is killed with it;
 *   - a resolver, table or link whose netns no longer exists (nothing can use it any more).
 * A netns held by another live kilnd is skipped and reported with its holder; so is one whose
 * processes (a VMM, a resolver) name the state directory of a live kilnd process, which also
 * protects a kilnd that takes no subnet lock (an older version).
 */
import { netNames, idHexFromName } from './names.js';
import { tryCmd } from './host-cmd.js';
import { type Cidr, cidrContains, formatCidr, parseIpv4 } from './ipv4.js';
import { heldSubnets } from './subnet-lock.js';
import { removeTopology } from './topology.js';
import { type Uplink, uplinkNetns } from './uplink.js';
import { findProcesses, readCmdline, signalProcess } from '../util/proc.js';
import { readFileSync } from 'node:fs';

export interface ForeignScan {
  /** This kilnd's subnet (its lock is held by this kilnd). */
  subnet: Cidr;
  lockDir: string;
  ownLockPath: string;
  uplink: Uplink;
  /** Whether a sandbox row of this kilnd owns the id hex (asked at decision time). */
  known(hex: string): boolean;
}

export interface ForeignResult {
  removed: string[];
  /** Found but left alone, with why. */
  skipped: string[];
}

async function kilnNetns(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const line of ((await tryCmd('ip', ['netns', 'list'])) ?? '').split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const hex = name.startsWith('kiln-') ? idHexFromName(name) : null;
    if (hex) out.set(hex, name);
  }
  return out;
}

async function netnsAddresses(netns: string): Promise<number[]> {
  const links = JSON.parse((await tryCmd('ip', ['-n', netns, '-j', '-4', 'addr', 'show'])) || '[]') as Array<{ addr_info?: Array<{ local?: string }> }>;
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => parseIpv4(a.local ?? '')).filter((n): n is number => n !== null && n >>> 24 !== 127));
}

/** Resolver processes (dnsmasq with a kiln sandbox's conf file), by id hex. */
function resolverProcesses(): Array<{ hex: string; proc: ReturnType<typeof findProcesses>[number] }> {
  const out: Array<{ hex: string; proc: ReturnType<typeof findProcesses>[number] }> = [];
  for (const p of findProcesses('dnsmasq')) {
    if (!(p.cmdline[0] ?? '').endsWith('dnsmasq')) continue;
    const conf = p.cmdline.find((a) => a.startsWith('--conf-file='));
    const hex = conf ? /\/(?:kiln-)?sb-([0-9a-f]{12})(?:[0-9a-f]{20})?\//.exec(conf)?.[1] : undefined;
    if (hex) out.push({ hex, proc: p });
  }
  return out;
}

/**
 * Whether a command line is a serving kilnd: `kilnd [run] …` (the daemon's binary, not its
 * image/doctor/audit commands), or the older `kilnd …`.
 */
export function isKilnd(argv: string[]): boolean {
  const bin = argv.findIndex((a) => /(^|\/)kilnd(\.js)?$/.test(a));
  if (bin >= 0) return !['image', 'doctor', 'audit', 'help'].includes(argv[bin + 1] ?? '');
  const i = argv.indexOf('daemon');
  return i >= 1 && argv.slice(0, i).some((a) => /(^|\/)(kiln|main\.js)$/.test(a));
}

/** State directories of the kilnd processes running now, other than this one. */
function liveKilndStateDirs(): Array<{ pid: number; stateDir: string }> {
  const out: Array<{ pid: number; stateDir: string }> = [];
  const seen = new Set<number>();
  for (const p of [...findProcesses('kilnd'), ...findProcesses('daemon')]) {
    if (seen.has(p.pid) || !isKilnd(p.cmdline)) continue;
    seen.add(p.pid);
    const argv = p.cmdline;
    const flag = argv.indexOf('--state-dir');
    let stateDir = flag > 0 ? argv[flag + 1] : undefined;
    if (!stateDir) {
      try {
        stateDir = /(?:^|\0)KILN_STATE_DIR=([^\0]+)/.exec(readFileSync(`/proc/${p.pid}/environ`, 'utf8'))?.[1];
      } catch {
        // gone
      }
    }
    out.push({ pid: p.pid, stateDir: (stateDir ?? '/var/lib/kiln').replace(/\/+$/, '') });
  }
  return out;
}

/** A live kilnd whose state directory a process in `netns` names, if any. */
async function liveUserOf(netns: string, kilnds: Array<{ pid: number; stateDir: string }>): Promise<{ pid: number; stateDir: string } | undefined> {
  const pids = ((await tryCmd('ip', ['netns', 'pids', netns])) ?? '').split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) {
    const cmd = (readCmdline(pid) ?? []).join(' ');
    const k = kilnds.find((x) => cmd.includes(`${x.stateDir}/`));
    if (k) return k;
  }
  return undefined;
}

export async function collectForeignOrphans(s: ForeignScan): Promise<ForeignResult> {
  const res: ForeignResult = { removed: [], skipped: [] };
  const others = await heldSubnets(s.lockDir, s.ownLockPath);
  const holderOf = (ip: number) => others.find((h) => cidrContains(h.subnet, ip));
  const netns = await kilnNetns();
  const kilnds = liveKilndStateDirs();

  for (const [hex, name] of netns) {
    if (s.known(hex)) continue;
    const addrs = await netnsAddresses(name);
    const ours = addrs.some((ip) => cidrContains(s.subnet, ip));
    const held = ours ? undefined : addrs.map(holderOf).find((h) => h !== undefined);
    if (held) {
      const h = held.holder;
      res.skipped.push(`netns ${name}: subnet ${formatCidr(held.subnet)} is held by ${h ? `kilnd pid ${h.pid} (state dir ${h.stateDir})` : held.path}`);
      continue;
    }
    if (!addrs.length && others.length) {
      res.skipped.push(`netns ${name}: no address yet and another kilnd is running (it may be building it)`);
      continue;
    }
    const user = ours ? undefined : await liveUserOf(name, kilnds);
    if (user) {
      res.skipped.push(`netns ${name}: used by kilnd pid ${user.pid} (state dir ${user.stateDir})`);
      continue;
    }
    if (s.known(hex)) continue;
    await removeTopology(netNames(hex), s.uplink, null);
    netns.delete(hex);
    res.removed.push(`netns ${name}${ours ? ` (in this kilnd's subnet ${formatCidr(s.subnet)})` : ' (no live kilnd holds its subnet)'}`);
  }

  for (const { hex, proc } of resolverProcesses()) {
    if (s.known(hex) || netns.has(hex)) continue;
    if (signalProcess(proc, 'SIGKILL', 'dnsmasq')) res.removed.push(`resolver pid ${proc.pid} of sb-${hex} (its netns is gone)`);
  }

  const up = uplinkNetns(s.uplink);
  for (const ns of new Set([null, up ?? null])) {
    const nsArgs = ns ? ['-n', ns] : [];
    const where = ns ? ` in ${ns}` : '';
    const tables = JSON.parse((await tryCmd('nft', ['-j', 'list', 'tables'], ns ? { netns: ns } : {})) || '{"nftables":[]}') as { nftables: Array<{ table?: { name?: string; family?: string } }> };
    for (const { table } of tables.nftables) {
      const hex = table?.name ? idHexFromName(table.name) : null;
      if (!hex || !table?.name || s.known(hex) || netns.has(hex)) continue;
      if ((await tryCmd('nft', ['delete', 'table', table.family ?? 'inet', table.name], ns ? { netns: ns } : {})) !== null) res.removed.push(`nft table ${table.family ?? 'inet'} ${table.name}${where}`);
    }
    const links = JSON.parse((await tryCmd('ip', [...nsArgs, '-j', 'link', 'show'])) || '[]') as Array<{ ifname?: string }>;
    for (const { ifname } of links) {
      const hex = ifname && /^k[tvu]/.test(ifname) ? idHexFromName(ifname) : null;
      if (!hex || !ifname || s.known(hex) || netns.has(hex)) continue;
      if ((await tryCmd('ip', [...nsArgs, 'link', 'del', ifname])) !== null) res.removed.push(`link ${ifname}${where}`);
    }
  }
  return res;
}
