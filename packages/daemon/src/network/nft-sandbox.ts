/**
 * The nftables tables inside a sandbox's netns (both named kiln_<hex>), rendered as `nft -f`
 * scripts. Each script is one atomic transaction.
 *
 * `table netdev` — on the TAP's ingress, before anything else: the guest's MAC and IPv4 source
 * are pinned (ARP included); anything else (a spoofed frame, IPv6) is dropped and counted.
 *
 * `table inet` — the policy, between the TAP (guest) and the veth (uplink):
 *   forward   established/related → accept_flow; new from the guest → egress; the rest (inbound
 *             connections) → drop_flow;
 *   egress    always-deny (host addresses, link-local/metadata, loopback, multicast, every
 *             sandbox), DNS to anyone but the resolver, the deny-list (and the addresses
 *             denied domains resolve to, set deny_dom4), private ranges not in
 *             allowPrivate → drop_flow; preset default: TCP 80/443; allow-list; else drop_flow;
 *   input     the netns itself (the host side): DNS to the resolver on the gateway address only;
 *   output    the resolver's queries to its upstream servers only;
 *   accept_flow / drop_flow  count per flow (dynamic sets keyed by the 5-tuple as the guest
 *             sent it, with packet/byte counters and a 1 h idle timeout) and in total.
 * Policy changes (renderPolicy) flush and refill only the policy chains and sets, so counters,
 * flows and the resolver-learnt domain addresses survive them.
 */
import { createHash } from 'node:crypto';
import type { NetNames } from './names.js';
import type { NetworkPolicy, PolicyRule } from './policy.js';
import { NEVER_ALLOWED, PRIVATE_RANGES } from './ranges.js';
import { formatCidr } from './ipv4.js';
import { DENIED_SET, type DeniedAnswer, deniedElements } from './denied-domains.js';

/** Idle timeout of per-flow accounting entries and of resolver-learnt domain addresses. */
export const FLOW_TIMEOUT_S = 3600;
export const FLOW_SET_SIZE = 65536;

export interface SandboxTableParams {
  names: NetNames;
  mac: string;
  guest: string;
  gateway: string;
  /** The whole sandbox subnet (always denied). */
  subnet: string;
  /** The host's own addresses (always denied); refreshed by renderHostAddresses. */
  hostAddrs: string[];
  /** The resolver's upstream servers (the only thing the netns itself may send to). */
  dnsUpstream: string[];
  /** Whether the netns has an uplink veth. */
  hasUplink: boolean;
}

const q = (s: string) => JSON.stringify(s);
const elems = (xs: readonly string[]) => (xs.length ? ` elements = { ${xs.join(', ')} };` : '');
const flowSet = (name: string, type: string) =>
  `  set ${name} { type ${type}; flags dynamic,timeout; timeout ${FLOW_TIMEOUT_S}s; size ${FLOW_SET_SIZE}; counter; }`;
const FIVE = 'ipv4_addr . ipv4_addr . inet_proto . inet_service . inet_service';
const THREE = 'ipv4_addr . ipv4_addr . inet_proto';

/** The policy sets flushed and refilled on every policy change. */
const POLICY_SETS = [
  ['allow_ports', 'ipv4_addr . inet_proto . inet_service'],
  ['allow_proto', 'ipv4_addr . inet_proto'],
  ['allow_any', 'ipv4_addr'],
  ['deny_ports', 'ipv4_addr . inet_proto . inet_service'],
  ['deny_proto', 'ipv4_addr . inet_proto'],
  ['deny_any', 'ipv4_addr'],
  ['allow_private4', 'ipv4_addr'],
] as const;

export function renderNetdevTable(p: SandboxTableParams): string {
  const t = p.names.table;
  return [
    `table netdev ${t} {`,
    '  counter spoofed { }',
    `  set spoofs { type ether_addr . ipv4_addr . ipv4_addr; flags dynamic,timeout; timeout ${FLOW_TIMEOUT_S}s; size 4096; counter; }`,
    `  chain tap_ingress { type filter hook ingress device ${q(p.names.tap)} priority -500; policy drop;`,
    `    ether saddr != ${p.mac} jump spoof`,
    `    arp htype 1 arp ptype ip arp saddr ether ${p.mac} arp saddr ip ${p.guest} accept`,
    `    ip saddr ${p.guest} accept`,
    '    ether type { arp, ip } jump spoof',
    '    drop',
    '  }',
    '  chain spoof {',
    '    counter name "spoofed"',
    '    ether type ip update @spoofs { ether saddr . ip saddr . ip daddr }',
    '    drop',
    '  }',
    '}',
  ].join('\n');
}

export function renderInetTable(p: SandboxTableParams): string {
  const t = p.names.table;
  const tap = q(p.names.tap);
  const never = [...NEVER_ALLOWED.map(formatCidr), p.subnet];
  return [
    `table inet ${t} {`,
    '  counter tx_guest { }',
    '  counter rx_guest { }',
    '  counter dropped { }',
    `  set host4 { type ipv4_addr; flags interval; auto-merge;${elems(p.hostAddrs)} }`,
    `  set never4 { type ipv4_addr; flags interval; auto-merge;${elems(never)} }`,
    `  set private4 { type ipv4_addr; flags interval; auto-merge;${elems(PRIVATE_RANGES.map(formatCidr))} }`,
    `  set dns_upstream4 { type ipv4_addr;${elems(p.dnsUpstream)} }`,
    ...POLICY_SETS.map(([n, type]) => `  set ${n} { type ${type}; flags interval; auto-merge; }`),
    flowSet('flows_out', FIVE),
    flowSet('flows_in', FIVE),
    flowSet('drops', FIVE),
    flowSet('oflows_out', THREE),
    flowSet('oflows_in', THREE),
    flowSet('odrops', THREE),
    '  chain accept_flow {',
    `    iifname ${tap} counter name "tx_guest"`,
    `    oifname ${tap} counter name "rx_guest"`,
    `    iifname ${tap} meta l4proto tcp update @flows_out { ip saddr . ip daddr . meta l4proto . tcp sport . tcp dport }`,
    `    iifname ${tap} meta l4proto udp update @flows_out { ip saddr . ip daddr . meta l4proto . udp sport . udp dport }`,
    `    iifname ${tap} meta l4proto != { tcp, udp } update @oflows_out { ip saddr . ip daddr . meta l4proto }`,
    `    oifname ${tap} meta l4proto tcp update @flows_in { ip daddr . ip saddr . meta l4proto . tcp dport . tcp sport }`,
    `    oifname ${tap} meta l4proto udp update @flows_in { ip daddr . ip saddr . meta l4proto . udp dport . udp sport }`,
    `    oifname ${tap} meta l4proto != { tcp, udp } update @oflows_in { ip daddr . ip saddr . meta l4proto }`,
    '    accept',
    '  }',
    '  chain drop_flow {',
    '    counter name "dropped"',
    '    meta l4proto tcp update @drops { ip saddr . ip daddr . meta l4proto . tcp sport . tcp dport }',
    '    meta l4proto udp update @drops { ip saddr . ip daddr . meta l4proto . udp sport . udp dport }',
    '    meta l4proto != { tcp, udp } update @odrops { ip saddr . ip daddr . meta l4proto }',
    '    drop',
    '  }',
    '  chain egress { }',
    '  chain resolver { }',
    '  chain forward_ { type filter hook forward priority 0; policy drop;',
    '    meta nfproto ipv6 drop',
    '    ct state established,related jump accept_flow',
    '    ct state invalid jump drop_flow',
    `    iifname ${tap} jump egress`,
    '    jump drop_flow',
    '  }',
    '  chain input_ { type filter hook input priority 0; policy drop;',
    '    iif lo accept',
    '    meta nfproto ipv6 drop',
    '    ct state established,related jump accept_flow',
    `    iifname ${tap} ip daddr ${p.gateway} jump resolver`,
    '    jump drop_flow',
    '  }',
    '  chain output_ { type filter hook output priority 0; policy drop;',
    '    oif lo accept',
    '    meta nfproto ipv6 drop',
    '    ct state established,related jump accept_flow',
    ...(p.hasUplink ? [`    oifname ${q(p.names.vethSandbox)} ip daddr @dns_upstream4 meta l4proto { udp, tcp } th dport 53 accept`] : []),
    '    counter drop',
    '  }',
    '}',
  ].join('\n');
}

/** Stable name of the set that holds a domain rule group's learnt addresses. */
export function domainSetName(protocol: string, ports: readonly string[]): string {
  return `adom_${createHash('sha256').update(`${protocol}:${ports.join(',')}`).digest('hex').slice(0, 10)}`;
}

/** Allowed domain rules grouped by (protocol, ports): one nft set each, filled by the resolver. */
export function domainGroups(policy: NetworkPolicy): Array<{ set: string; protocol: string; ports: string[]; domains: string[] }> {
  const groups = new Map<string, { set: string; protocol: string; ports: string[]; domains: string[] }>();
  if (policy.preset === 'none') return [];
  for (const r of policy.allow) {
    if (!r.domain) continue;
    const set = domainSetName(r.protocol, r.ports);
    const g = groups.get(set) ?? { set, protocol: r.protocol, ports: r.ports, domains: [] };
    if (!g.domains.includes(r.domain)) g.domains.push(r.domain);
    groups.set(set, g);
  }
  return [...groups.values()];
}

function protoList(protocol: string): string[] {
  return protocol === 'any' ? [] : [protocol];
}

/** Set elements of CIDR rules: [ports, proto, any]. */
function ruleElements(rules: readonly PolicyRule[]): [string[], string[], string[]] {
  const ports: string[] = [];
  const proto: string[] = [];
  const any: string[] = [];
  for (const r of rules) {
    if (!r.cidr) continue;
    if (r.protocol === 'any') any.push(r.cidr);
    else if (!r.ports.length) for (const p of protoList(r.protocol)) proto.push(`${r.cidr} . ${p}`);
    else for (const port of r.ports) ports.push(`${r.cidr} . ${r.protocol} . ${port}`);
  }
  return [ports, proto, any];
}

function l4match(protocol: string, ports: readonly string[]): string {
  if (protocol === 'any') return '';
  if (!ports.length) return ` meta l4proto ${protocol}`;
  return ` meta l4proto ${protocol} th dport { ${ports.join(', ')} }`;
}

/**
 * Flushes and refills the policy chains and sets (part of the create script, and a live
 * change). `denied`: the addresses denied domains resolve to now (denied-domains.ts); the set
 * is created here too, so a table made by an older kilnd gains it on its first change.
 */
export function renderPolicy(p: { names: NetNames; policy: NetworkPolicy; denied?: readonly DeniedAnswer[] }): string {
  const t = p.names.table;
  const { policy } = p;
  const out = [`flush chain inet ${t} egress`, `flush chain inet ${t} resolver`];
  for (const [n] of POLICY_SETS) out.push(`flush set inet ${t} ${n}`);
  out.push(`add set inet ${t} ${DENIED_SET} { type ipv4_addr; flags timeout; size ${FLOW_SET_SIZE}; }`, `flush set inet ${t} ${DENIED_SET}`);
  const deniedEls = deniedElements(p.denied ?? []);
  if (deniedEls.length) out.push(`add element inet ${t} ${DENIED_SET} { ${deniedEls.join(', ')} }`);
  const add = (set: string, xs: string[]) => {
    if (xs.length) out.push(`add element inet ${t} ${set} { ${xs.join(', ')} }`);
  };
  const [ap, apr, aany] = ruleElements(policy.preset === 'none' ? [] : policy.allow);
  const [dp, dpr, dany] = ruleElements(policy.deny);
  add('allow_ports', ap);
  add('allow_proto', apr);
  add('allow_any', aany);
  add('deny_ports', dp);
  add('deny_proto', dpr);
  add('deny_any', dany);
  add('allow_private4', policy.allowPrivate);
  const groups = domainGroups(policy);
  for (const g of groups) out.push(`add set inet ${t} ${g.set} { type ipv4_addr; flags timeout; timeout ${FLOW_TIMEOUT_S}s; }`);

  const rule = (chain: string, r: string) => out.push(`add rule inet ${t} ${chain} ${r}`);
  if (policy.preset !== 'none') rule('resolver', 'meta l4proto { udp, tcp } th dport 53 jump accept_flow');
  // The private registry (registry.kiln.internal = the gateway, port 443; registry/service.ts):
  // on by default, for the registry only; a policy of `none` reaches nothing, this included.
  if (policy.preset !== 'none') rule('resolver', 'meta l4proto tcp th dport 443 jump accept_flow');
  rule('resolver', 'jump drop_flow');
  if (policy.preset !== 'none') {
    rule('egress', 'ip daddr @host4 jump drop_flow');
    rule('egress', 'ip daddr @never4 jump drop_flow');
    rule('egress', 'meta l4proto { tcp, udp } th dport 53 jump drop_flow');
    rule('egress', 'ip daddr @deny_any jump drop_flow');
    rule('egress', `ip daddr @${DENIED_SET} jump drop_flow`);
    rule('egress', 'ip daddr . meta l4proto @deny_proto jump drop_flow');
    rule('egress', 'ip daddr . meta l4proto . th dport @deny_ports jump drop_flow');
    rule('egress', 'ip daddr @private4 ip daddr != @allow_private4 jump drop_flow');
    if (policy.preset === 'default') rule('egress', 'meta l4proto tcp th dport { 80, 443 } jump accept_flow');
    rule('egress', 'ip daddr @allow_any jump accept_flow');
    rule('egress', 'ip daddr . meta l4proto @allow_proto jump accept_flow');
    rule('egress', 'ip daddr . meta l4proto . th dport @allow_ports jump accept_flow');
    for (const g of groups) rule('egress', `ip daddr @${g.set}${l4match(g.protocol, g.ports)} jump accept_flow`);
  }
  rule('egress', 'jump drop_flow');
  return out.join('\n');
}

/** Replaces the host-address set (the host's addresses change, e.g. by DHCP). */
export function renderHostAddresses(names: NetNames, hostAddrs: readonly string[]): string {
  const t = names.table;
  return [`flush set inet ${t} host4`, ...(hostAddrs.length ? [`add element inet ${t} host4 { ${hostAddrs.join(', ')} }`] : [])].join('\n');
}

/** The whole create script for the netns: both tables and the policy, one transaction. */
export function renderSandboxTables(p: SandboxTableParams & { policy: NetworkPolicy }): string {
  return [renderNetdevTable(p), renderInetTable(p), renderPolicy(p), ''].join('\n');
}
