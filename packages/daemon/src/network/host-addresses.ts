/**
 * Addresses on the host. What of a subnet is already in use in a namespace: its interface
 * addresses and the destinations of its routes. A kilnd skips address blocks that another instance's leftovers
 * (or anything else) hold there, instead of failing a create on `File exists`.
 */
import { KilnError } from '../errors.js';
import { BLOCK_SIZE } from './address-plan.js';
import { hostCmd, NetworkCommandError, tryCmd } from './host-cmd.js';
import { type Cidr, cidrContains, parseCidr, parseIpv4 } from './ipv4.js';

/** Slots of `subnet` (address-plan.ts) holding an address or a route target in namespace `ns` (null: root). */
export async function busySlots(subnet: Cidr, ns: string | null): Promise<Set<number>> {
  const nsArgs = ns ? ['-n', ns] : [];
  const slots = new Set<number>();
  const add = (text: string | undefined) => {
    const c = text ? parseCidr(text.includes('/') ? text : `${text}/32`, { strict: false }) : null;
    if (!c || !cidrContains(subnet, c.base)) return;
    // a route to a whole range (e.g. the subnet itself) says nothing about single blocks
    if (c.prefix < 29) return;
    slots.add(Math.floor((c.base - subnet.base) / BLOCK_SIZE));
  };
  const addrs = JSON.parse((await tryCmd('ip', [...nsArgs, '-j', '-4', 'addr', 'show'])) || '[]') as Array<{ addr_info?: Array<{ local?: string }> }>;
  for (const l of addrs) for (const a of l.addr_info ?? []) add(a.local);
  const routes = JSON.parse((await tryCmd('ip', [...nsArgs, '-j', '-4', 'route', 'show'])) || '[]') as Array<{ dst?: string }>;
  for (const r of routes) if (r.dst && r.dst !== 'default') add(r.dst);
  return slots;
}

/** A setup failure because a name or an address is taken, said by name (never raw `ip` output). */
export function inUseError(err: unknown, what: { netns: string; block: string; gateway: string; guest: string }): KilnError | null {
  if (!(err instanceof NetworkCommandError) || !/File exists|already exists/i.test(err.stderr)) return null;
  return new KilnError(
    'NETWORK_ADDRESS_IN_USE',
    `address block ${what.block} (gateway ${what.gateway}, guest ${what.guest}) or the name ${what.netns} is already in use on this host; \`kiln gc\` removes kiln leftovers that no live kilnd owns`,
    { status: 409, cause: err },
  );
}

/** The host's own IPv4 addresses outside the sandbox subnet (always denied to sandboxes). */
export async function readHostAddrs(subnet: Cidr): Promise<string[]> {
  const out = JSON.parse(await hostCmd('ip', ['-j', '-4', 'addr', 'show'])) as Array<{ addr_info?: Array<{ local?: string }> }>;
  const addrs = new Set<string>();
  for (const link of out) {
    for (const a of link.addr_info ?? []) {
      const ip = a.local ? parseIpv4(a.local) : null;
      if (ip !== null && !cidrContains(subnet, ip) && a.local) addrs.add(a.local);
    }
  }
  return [...addrs].sort();
}
