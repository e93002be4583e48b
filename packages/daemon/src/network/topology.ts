/**
 * Builds and removes a sandbox's host-side network:
 *
 *   guest eth0 ── TAP kt<hex> ┐ netns kiln-<hex>: forwarding, nft policy, dnsmasq ┌ ku<hex> ══ kv<hex> ── uplink
 *   (block+2)     (block+1)   └──────────────────────────────────────────────────┘ (block+6)   (block+5)
 *
 * QEMU runs inside the netns and opens the TAP there. Teardown is idempotent and works from
 * names alone, so it also removes what a crash left behind.
 */
import { KilnError } from '../errors.js';
import { sleep } from '../util/proc.js';
import type { SandboxAddresses } from './address-plan.js';
import { hostCmd, nftApply, tryCmd } from './host-cmd.js';
import { type NetNames, idHexFromName } from './names.js';
import { renderSandboxTables } from './nft-sandbox.js';
import { renderUplinkTable } from './nft-uplink.js';
import { refreshDeniedAddresses } from './live-policy.js';
import { inUseError } from './host-addresses.js';
import type { NetworkPolicy } from './policy.js';
import { startResolver, stopResolver } from './resolver.js';
import { type Uplink, uplinkNetns } from './uplink.js';

export interface TopologyParams {
  names: NetNames;
  addresses: SandboxAddresses;
  mac: string;
  subnet: string;
  uplink: Uplink;
  hostAddrs: string[];
  dnsUpstream: string[];
  policy: NetworkPolicy;
  runDir: string;
  /** Owner of the TAP, so an unprivileged QEMU may open it. Default: root only. */
  tapUid?: number;
}

/** Kernel settings of the sandbox netns: forwarding on, IPv6 off (never offered), no router advertisements. */
const NETNS_SYSCTLS = [
  'net.ipv4.ip_forward=1',
  'net.ipv6.conf.all.disable_ipv6=1',
  'net.ipv6.conf.default.disable_ipv6=1',
  'net.ipv6.conf.all.accept_ra=0',
  'net.ipv6.conf.default.accept_ra=0',
  'net.ipv4.conf.all.send_redirects=0',
  'net.ipv4.conf.default.send_redirects=0',
];

/** `ip [-n ns] -batch -`: one process for several changes, applied in order; the first failure stops it. */
const ipBatch = (ns: string | null, lines: string[][]) =>
  hostCmd('ip', [...(ns === null ? [] : ['-n', ns]), '-batch', '-'], { input: lines.map((l) => l.join(' ')).join('\n') + '\n' });

function setupError(p: TopologyParams, err: unknown): KilnError {
  const n = p.names;
  const inUse = inUseError(err, { netns: n.netns, block: p.addresses.block, gateway: p.addresses.gateway, guest: p.addresses.guest });
  if (inUse) return inUse;
  return err instanceof KilnError
    ? err
    : new KilnError('NETWORK_SETUP_FAILED', `network setup of ${n.netns} failed: ${(err as Error).message}`, { cause: err });
}

/**
 * The part a VMM needs to start: the netns (its sysctls first, so the TAP is born with IPv6
 * off) and the TAP with the gateway's address. Nothing in it reaches beyond the netns. On
 * failure it throws NETWORK_SETUP_FAILED and leaves removal to removeTopology.
 */
export async function buildTap(p: TopologyParams): Promise<void> {
  const { names: n, addresses: a } = p;
  try {
    await hostCmd('ip', ['netns', 'add', n.netns]);
    await hostCmd('sysctl', ['-q', '-w', ...NETNS_SYSCTLS], { netns: n.netns });
    await ipBatch(n.netns, [
      ['link', 'set', 'lo', 'up'],
      ['tuntap', 'add', 'dev', n.tap, 'mode', 'tap', ...(p.tapUid !== undefined ? ['user', String(p.tapUid)] : [])],
      ['addr', 'add', `${a.gateway}/${a.guestPrefix}`, 'dev', n.tap],
      ['link', 'set', n.tap, 'up'],
    ]);
  } catch (err) {
    throw setupError(p, err);
  }
}

/**
 * The rest, after buildTap: the veth pair to the uplink with its routes, both nftables tables
 * (the sandbox's policy, the uplink's) and the resolver. The guest must not run before this
 * has finished: its policy is part of it. Same failure contract as buildTap.
 */
export async function buildEgress(p: TopologyParams): Promise<void> {
  const { names: n, addresses: a } = p;
  const up = uplinkNetns(p.uplink);
  try {
    if (up !== undefined) {
      await ipBatch(up, [
        ['link', 'add', n.vethUplink, 'type', 'veth', 'peer', 'name', n.vethSandbox, 'netns', n.netns],
        ['addr', 'add', `${a.uplinkVeth}/${a.vethPrefix}`, 'dev', n.vethUplink],
        ['link', 'set', n.vethUplink, 'up'],
        ['route', 'add', `${a.guest}/32`, 'via', a.sandboxVeth, 'dev', n.vethUplink],
      ]);
      await ipBatch(n.netns, [
        ['addr', 'add', `${a.sandboxVeth}/${a.vethPrefix}`, 'dev', n.vethSandbox],
        ['link', 'set', n.vethSandbox, 'up'],
        ['route', 'add', 'default', 'via', a.uplinkVeth, 'dev', n.vethSandbox],
      ]);
    }
    const sandboxTables = nftApply(
      renderSandboxTables({
        names: n,
        mac: p.mac,
        guest: a.guest,
        gateway: a.gateway,
        subnet: p.subnet,
        hostAddrs: p.hostAddrs,
        dnsUpstream: up === undefined ? [] : p.dnsUpstream,
        hasUplink: up !== undefined,
        policy: p.policy,
      }),
      n.netns,
    );
    const uplinkTable =
      up === undefined
        ? undefined
        : nftApply(renderUplinkTable({ names: n, block: a.block, sandboxVeth: a.sandboxVeth, dnsUpstream: p.dnsUpstream, host: p.uplink.kind === 'host' }), up ?? undefined);
    const resolver = startResolver({ names: n, runDir: p.runDir, gateway: a.gateway, upstream: up === undefined ? [] : p.dnsUpstream, policy: p.policy });
    // All three are independent (each its own namespace or process); every one is waited for.
    const results = await Promise.allSettled([sandboxTables, uplinkTable, resolver]);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
    // Denied domains are blocked by address before the guest runs (denied-domains.ts).
    if (up !== undefined && p.policy.deny.some((r) => r.domain)) {
      await refreshDeniedAddresses({ names: n, runDir: p.runDir, gateway: a.gateway, upstream: p.dnsUpstream }, p.policy);
    }
  } catch (err) {
    throw setupError(p, err);
  }
}

/** buildTap then buildEgress; on failure everything is removed again. */
export async function buildTopology(p: TopologyParams): Promise<void> {
  try {
    await buildTap(p);
    await buildEgress(p);
  } catch (err) {
    await removeTopology(p.names, p.uplink, p.runDir).catch(() => undefined);
    throw err;
  }
}

async function netnsExists(name: string): Promise<boolean> {
  const out = (await tryCmd('ip', ['netns', 'list'])) ?? '';
  return out.split('\n').some((l) => l.split(' ')[0] === name);
}

/** Kills every process still inside the netns (a resolver whose pid file is gone, a stray VMM). */
async function killNetnsProcesses(netns: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const pids = ((await tryCmd('ip', ['netns', 'pids', netns])) ?? '').split(/\s+/).filter(Boolean).map(Number);
    if (!pids.length) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await sleep(20);
  }
}

/** Removes everything of one sandbox's network (idempotent; `runDir` may be gone). */
export async function removeTopology(n: NetNames, uplink: Uplink, runDir: string | null): Promise<void> {
  if (runDir) await stopResolver(runDir).catch(() => undefined);
  const up = uplinkNetns(uplink);
  if (await netnsExists(n.netns)) {
    await killNetnsProcesses(n.netns);
    await hostCmd('ip', ['netns', 'del', n.netns]);
  }
  for (const ns of up === undefined ? [null] : [up]) {
    await tryCmd('nft', ['delete', 'table', 'inet', n.table], ns ? { netns: ns } : {});
    await tryCmd('ip', [...(ns ? ['-n', ns] : []), 'link', 'del', n.vethUplink]);
  }
  if (uplink.kind !== 'host') {
    // a host table left by an earlier configuration
    await tryCmd('nft', ['delete', 'table', 'inet', n.table]);
  }
  if (await netnsExists(n.netns)) throw new KilnError('NETWORK_CLEANUP_FAILED', `netns ${n.netns} is still there after removal`);
}

/** Id hexes of every kiln network resource found (netns, links, tables), in root and uplink namespaces. */
export async function findNetworkResources(uplink: Uplink): Promise<Set<string>> {
  const found = new Set<string>();
  const add = (name: string | undefined) => {
    const h = name ? idHexFromName(name) : null;
    if (h) found.add(h);
  };
  for (const line of ((await tryCmd('ip', ['netns', 'list'])) ?? '').split('\n')) add(line.split(' ')[0]);
  const up = uplinkNetns(uplink);
  for (const ns of new Set([null, up ?? null])) {
    const links = JSON.parse((await tryCmd('ip', [...(ns ? ['-n', ns] : []), '-j', 'link', 'show'])) || '[]') as Array<{ ifname?: string }>;
    for (const l of links) add(l.ifname);
    const tables = JSON.parse((await tryCmd('nft', ['-j', 'list', 'tables'], ns ? { netns: ns } : {})) || '{"nftables":[]}') as {
      nftables: Array<{ table?: { name?: string } }>;
    };
    for (const t of tables.nftables) add(t.table?.name);
  }
  return found;
}
