/** kilnd's network configuration (`network` in DaemonConfig). Every option documents its default. */
import { readFileSync } from 'node:fs';
import { invalidArgument } from '../errors.js';
import { parseIpv4, requireCidr } from './ipv4.js';
import { parseUplink } from './uplink.js';

export interface NetworkConfig {
  /** Give sandboxes a network at all. Default true (KILN_NET=off turns it off). */
  enabled: boolean;
  /** `host` (default; masqueraded behind the host), `netns:NAME` (tests), or `none`. KILN_NET_UPLINK. */
  uplink: string;
  /** Sandbox address space, cut into /29 blocks. Default 10.210.0.0/16. KILN_NET_SUBNET. */
  subnet: string;
  /**
   * Upstream servers of the sandbox resolvers. Default: the nameservers of the host's
   * /etc/resolv.conf (loopback ones skipped: unreachable from a sandbox). KILN_NET_DNS (comma list).
   */
  dnsUpstream: string[] | null;
  /** How often flows and counters are read from nftables. Default 10000 ms. */
  flowPollMs: number;
  /** How often denied domains are resolved again for the address deny-set (denied-domains.ts). Default 60000 ms. */
  deniedRefreshMs: number;
  /** How often the host's own addresses (always denied) are re-read. Default 30000 ms. */
  hostAddrRefreshMs: number;
  /** Where the host-wide per-subnet locks live (subnet-lock.ts). Default /run/kiln. KILN_NET_LOCK_DIR. */
  lockDir: string;
  /** Owner uid of each TAP, so an unprivileged QEMU can open it. Default null (root only). */
  tapUid: number | null;
}

const env = process.env;

export const DEFAULT_NETWORK_CONFIG: NetworkConfig = {
  enabled: env.KILN_NET !== 'off',
  uplink: env.KILN_NET_UPLINK ?? 'host',
  subnet: env.KILN_NET_SUBNET ?? '10.210.0.0/16',
  dnsUpstream: env.KILN_NET_DNS ? env.KILN_NET_DNS.split(',').map((s) => s.trim()).filter(Boolean) : null,
  flowPollMs: 10_000,
  deniedRefreshMs: 60_000,
  hostAddrRefreshMs: 30_000,
  lockDir: env.KILN_NET_LOCK_DIR ?? '/run/kiln',
  tapUid: null,
};

/** Nameservers of a resolv.conf, IPv4 and not loopback. */
export function resolvConfServers(path = '/etc/resolv.conf'): string[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return [...text.matchAll(/^\s*nameserver\s+(\S+)/gm)].map((m) => m[1] ?? '').filter((s) => parseIpv4(s) !== null && !s.startsWith('127.'));
}

/** Validates a network config; throws INVALID_ARGUMENT naming the field. */
export function checkNetworkConfig(c: NetworkConfig): void {
  parseUplink(c.uplink);
  const subnet = requireCidr(c.subnet, 'network.subnet');
  if (subnet.prefix > 29) throw invalidArgument('network.subnet must be /29 or larger', { field: 'network.subnet' });
  for (const s of c.dnsUpstream ?? []) {
    if (parseIpv4(s) === null) throw invalidArgument(`network.dnsUpstream: ${JSON.stringify(s)} is not an IPv4 address`, { field: 'network.dnsUpstream' });
  }
}
