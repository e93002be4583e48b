/**
 * Denied domains, blocked by address too. The sandbox resolver answers NXDOMAIN for a denied
 * domain, but a guest that knows the address could still connect to it. So kilnd resolves
 * each denied domain (and every subdomain of one that the guest asked its resolver about)
 * through the resolver's own upstream servers, from inside the sandbox's netns (resolve-cli.ts),
 * and puts the answers into the nft set `deny_dom4` that the egress chain drops. Entries live
 * max(TTL, DENIED_MIN_TIMEOUT_S) and are refreshed every `deniedRefreshMs` (and at every policy
 * change and at creation), so the set follows the answers as they change; an address that
 * stops being an answer stays blocked until it idles out (fail closed).
 */
import { join } from 'node:path';
import { hostCmd } from './host-cmd.js';
import type { NetNames } from './names.js';
import type { NetworkPolicy } from './policy.js';

export const DENIED_SET = 'deny_dom4';
/** The least time a learnt denied address stays in the set (several refresh rounds). */
export const DENIED_MIN_TIMEOUT_S = 300;
export const DENIED_MAX_TIMEOUT_S = 3600;
/** At most this many subdomains seen in the query log are resolved per round. */
export const DENIED_MAX_SEEN = 32;

export interface DeniedAnswer {
  name: string;
  address: string;
  ttl: number;
}

export const deniedDomains = (policy: NetworkPolicy): string[] => [...new Set(policy.deny.flatMap((r) => (r.domain ? [r.domain] : [])))];

/** Names the guest asked for that fall under a denied domain (from the resolver's query log). */
export function deniedNamesSeen(log: string, domains: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const m of log.matchAll(/query\[(?:A|AAAA|ANY)\] (\S+) from/g)) {
    const name = (m[1] ?? '').toLowerCase().replace(/\.$/, '');
    if (domains.some((d) => name === d || name.endsWith(`.${d}`))) seen.add(name);
  }
  return [...seen].slice(-DENIED_MAX_SEEN);
}

/** Resolves `names` through `servers` from inside `netns`. Names that fail are left out. */
export async function resolveInNetns(netns: string, servers: readonly string[], names: readonly string[]): Promise<DeniedAnswer[]> {
  if (!servers.length || !names.length) return [];
  const out = await hostCmd(process.execPath, [join(import.meta.dirname, 'resolve-cli.js'), JSON.stringify({ servers, names, timeoutMs: 1000 })], { netns, timeoutMs: 15_000 });
  return (JSON.parse(out) as { answers: DeniedAnswer[] }).answers;
}

/** nft elements of the answers, each with its timeout. */
export function deniedElements(answers: readonly DeniedAnswer[]): string[] {
  const best = new Map<string, number>();
  for (const a of answers) best.set(a.address, Math.max(best.get(a.address) ?? 0, a.ttl));
  return [...best].map(([addr, ttl]) => `${addr} timeout ${Math.min(DENIED_MAX_TIMEOUT_S, Math.max(DENIED_MIN_TIMEOUT_S, ttl))}s`);
}

/** Adds (refreshes) learnt addresses; `add element` of an existing one renews its timeout. */
export function renderDeniedAdd(names: NetNames, answers: readonly DeniedAnswer[]): string {
  const els = deniedElements(answers);
  if (!els.length) return '';
  // delete+add renews the timeout of an element that is already there
  return [`add element inet ${names.table} ${DENIED_SET} { ${els.join(', ')} }`, `delete element inet ${names.table} ${DENIED_SET} { ${els.map((e) => e.split(' ')[0]).join(', ')} }`, `add element inet ${names.table} ${DENIED_SET} { ${els.join(', ')} }`].join('\n');
}
