/** Shared by the network e2e tests: guest-side probes and the shapes of the network API. */
import { execFileSync } from 'node:child_process';

export const BB = '/opt/kiln/bin/busybox';
/** A shell line that fetches URL with a deadline and prints `<tag>=<exit code>` (busybox wget's own -T crashes). */
export const fetch = (tag: string, url: string, secs = 6) => `( ${BB} timeout ${secs} ${BB} wget -q -O - ${url} >/tmp/${tag}.out 2>&1; echo ${tag}=$? )`;

export interface FlowView {
  verdict: string;
  reason: string | null;
  protocol: string;
  src: string;
  dst: string;
  dstPort: number | null;
  packetsOut: number;
  packetsIn: number;
}
export interface Flows {
  counters: Record<string, number>;
  flows: FlowView[];
}
export interface NetView {
  address: string;
  gateway: string;
  netns: string;
  tap: string;
  mac: string;
}

/** A non-loopback IPv4 address of the host outside the sandbox subnet. */
export function hostAddress(subnet: string): string {
  const prefix = `${subnet.split('.').slice(0, 2).join('.')}.`;
  const links = JSON.parse(execFileSync('ip', ['-j', '-4', 'addr', 'show']).toString()) as Array<{ ifname: string; addr_info: Array<{ local: string }> }>;
  for (const l of links) for (const a of l.addr_info) if (!a.local.startsWith('127.') && !a.local.startsWith(prefix)) return a.local;
  throw new Error('the host has no non-loopback IPv4 address');
}

/** `tag=code` lines of probe output as a record. */
export const results = (out: string): Record<string, number> => Object.fromEntries([...out.matchAll(/^(\w+)=(\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
