/**
 * Reading a sandbox's accounting out of nftables: the named counters (totals) and the dynamic
 * flow sets (one element per flow, keyed by the 5-tuple as the guest sent it, with counters and
 * the time left before it idles out, from which the last packet's time follows). Drops carry
 * a reason, classified from the destination against the same ranges the policy uses.
 */
import { FLOW_TIMEOUT_S } from './nft-sandbox.js';
import { cidrContains, parseCidr, parseIpv4 } from './ipv4.js';
import { NEVER_ALLOWED, PRIVATE_RANGES } from './ranges.js';

export type Verdict = 'accept' | 'drop';
export type DropReason = 'spoof' | 'inbound' | 'host' | 'reserved' | 'sandbox' | 'dns' | 'private' | 'policy';

export interface FlowObservation {
  verdict: Verdict;
  reason: DropReason | null;
  protocol: string;
  src: string;
  srcPort: number | null;
  dst: string;
  dstPort: number | null;
  /** Direction of the counted packets: out = from the guest. */
  dir: 'out' | 'in';
  packets: number;
  bytes: number;
  /** Epoch ms of the latest packet (second resolution). */
  lastSeenMs: number;
}

export interface NetCounters {
  packetsOut: number;
  bytesOut: number;
  packetsIn: number;
  bytesIn: number;
  packetsDropped: number;
  bytesDropped: number;
  packetsSpoofed: number;
}

interface NftCounter {
  name: string;
  table: string;
  family: string;
  packets: number;
  bytes: number;
}
interface NftElem {
  elem?: { val?: unknown; expires?: number; counter?: { packets: number; bytes: number } };
}
interface NftSet {
  name: string;
  table: string;
  family: string;
  elem?: NftElem[];
}
type NftItem = { counter?: NftCounter; set?: NftSet };

export interface ClassifyContext {
  guest: string;
  gateway: string;
  subnet: string;
  hostAddrs: string[];
}

const PROTO_NAMES: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'ipv6-icmp' };
const protoName = (v: unknown): string => (typeof v === 'number' ? (PROTO_NAMES[v] ?? String(v)) : String(v));

export function classifyDrop(ctx: ClassifyContext, o: { src: string; dst: string; dstPort: number | null; protocol: string }): DropReason {
  if (o.src !== ctx.guest) return 'inbound';
  const dst = parseIpv4(o.dst) ?? 0;
  if (o.dst === ctx.gateway || ctx.hostAddrs.some((h) => { const c = parseCidr(h, { strict: false }); return c !== null && cidrContains(c, dst); })) return 'host';
  if (NEVER_ALLOWED.some((c) => cidrContains(c, dst))) return 'reserved';
  const subnet = parseCidr(ctx.subnet);
  if (subnet && cidrContains(subnet, dst)) return 'sandbox';
  if (o.dstPort === 53 && (o.protocol === 'udp' || o.protocol === 'tcp')) return 'dns';
  if (PRIVATE_RANGES.some((c) => cidrContains(c, dst))) return 'private';
  return 'policy';
}

/** Parses `nft -j list ruleset` of a sandbox netns into totals and flow observations. */
export function parseAccounting(json: string, table: string, ctx: ClassifyContext, nowMs = Date.now()): { counters: NetCounters; flows: FlowObservation[] } {
  const items = ((JSON.parse(json) as { nftables?: NftItem[] }).nftables ?? []).filter((i) => (i.counter ?? i.set)?.table === table);
  const counters: NetCounters = { packetsOut: 0, bytesOut: 0, packetsIn: 0, bytesIn: 0, packetsDropped: 0, bytesDropped: 0, packetsSpoofed: 0 };
  const flows: FlowObservation[] = [];
  for (const { counter: c } of items) {
    if (!c) continue;
    if (c.name === 'tx_guest') Object.assign(counters, { packetsOut: c.packets, bytesOut: c.bytes });
    else if (c.name === 'rx_guest') Object.assign(counters, { packetsIn: c.packets, bytesIn: c.bytes });
    else if (c.name === 'dropped') Object.assign(counters, { packetsDropped: c.packets, bytesDropped: c.bytes });
    else if (c.name === 'spoofed') counters.packetsSpoofed = c.packets;
  }
  for (const { set } of items) {
    if (!set?.elem) continue;
    const kind = set.family === 'netdev' ? (set.name === 'spoofs' ? 'spoof' : null) : ({ flows_out: 'out', oflows_out: 'out', flows_in: 'in', oflows_in: 'in', drops: 'drop', odrops: 'drop' } as Record<string, string>)[set.name];
    if (!kind) continue;
    for (const e of set.elem) {
      const el = e.elem;
      const v = (el?.val as { concat?: unknown[] } | undefined)?.concat;
      if (!el || !v || !el.counter) continue;
      const lastSeenMs = nowMs - Math.max(0, FLOW_TIMEOUT_S - (el.expires ?? FLOW_TIMEOUT_S)) * 1000;
      const base = { packets: el.counter.packets, bytes: el.counter.bytes, lastSeenMs };
      if (kind === 'spoof') {
        const [, src, dst] = v as [string, string, string];
        flows.push({ ...base, verdict: 'drop', reason: 'spoof', protocol: 'ip', src, srcPort: null, dst, dstPort: null, dir: 'out' });
        continue;
      }
      const [src, dst, proto, sport, dport] = v as [string, string, unknown, number | undefined, number | undefined];
      const o = { src, dst, protocol: protoName(proto), srcPort: sport ?? null, dstPort: dport ?? null };
      if (kind === 'drop') {
        flows.push({ ...base, ...o, verdict: 'drop', reason: classifyDrop(ctx, o), dir: src === ctx.guest ? 'out' : 'in' });
      } else {
        flows.push({ ...base, ...o, verdict: 'accept', reason: null, dir: kind as 'out' | 'in' });
      }
    }
  }
  return { counters, flows };
}
