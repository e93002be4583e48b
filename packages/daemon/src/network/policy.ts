/**
 * A sandbox's egress policy: its shape, presets, validation and defaults. Enforcement is in
 * nft-sandbox.ts; what is always dropped whatever the policy says is in ranges.ts.
 *
 * Presets:
 *   default  DNS to the sandbox resolver, TCP 80 and 443 to public addresses, plus `allow`;
 *   locked   DNS to the sandbox resolver plus `allow` only;
 *   none     nothing at all (not even DNS); `allow` must be empty.
 * `deny` beats `allow`. A rule names exactly one of `cidr` or `domain` (a domain covers its
 * subdomains; its addresses are learnt from the sandbox resolver's answers as the guest asks).
 * Denied domains answer NXDOMAIN. Private ranges stay dropped unless listed in `allowPrivate`.
 */
import { invalidArgument } from '../errors.js';
import { cidrsOverlap, formatCidr, parseCidr, requireCidr } from './ipv4.js';
import { NEVER_ALLOWED, PRIVATE_RANGES } from './ranges.js';

export const PRESETS = ['default', 'locked', 'none'] as const;
export type Preset = (typeof PRESETS)[number];
export const PROTOCOLS = ['tcp', 'udp', 'icmp', 'any'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** Limits on a policy's size. */
export const POLICY_LIMITS = { rules: 256, domains: 64, allowPrivate: 64 } as const;

export interface RuleInput {
  cidr?: string;
  domain?: string;
  /** Default: `tcp` for an allowed domain, `any` otherwise. */
  protocol?: Protocol;
  /** Ports or "from-to" ranges; empty/absent = every port (allowed domains: 80 and 443). */
  ports?: Array<number | string>;
}

export interface PolicyInput {
  /** Default `default`. */
  preset?: Preset;
  /** Default []. */
  allow?: RuleInput[];
  /** Default []. */
  deny?: RuleInput[];
  /** Private CIDRs this sandbox may reach. Default []. */
  allowPrivate?: string[];
}

export interface PolicyRule {
  cidr?: string;
  domain?: string;
  protocol: Protocol;
  /** Normalised "n" or "from-to"; empty = every port. */
  ports: string[];
}

export interface NetworkPolicy {
  preset: Preset;
  allow: PolicyRule[];
  deny: PolicyRule[];
  allowPrivate: string[];
}

export const DEFAULT_POLICY: NetworkPolicy = { preset: 'default', allow: [], deny: [], allowPrivate: [] };

const DOMAIN_RE = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

function normPorts(ports: Array<number | string>, field: string): string[] {
  const out: string[] = [];
  for (const p of ports) {
    const m = typeof p === 'number' ? [String(p), String(p)] : /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(p)?.slice(1);
    const from = Number(m?.[0]);
    const to = m?.[1] === undefined ? from : Number(m[1]);
    if (!m || !Number.isInteger(from) || !Number.isInteger(to) || from < 1 || to > 65535 || from > to) {
      throw invalidArgument(`${field}: ${JSON.stringify(p)} is not a port (1-65535) or a range "from-to"`, { field });
    }
    out.push(from === to ? String(from) : `${from}-${to}`);
  }
  return [...new Set(out)];
}

function normRule(r: RuleInput, field: string, kind: 'allow' | 'deny', allowPrivate: string[]): PolicyRule {
  if (typeof r !== 'object' || r === null) throw invalidArgument(`${field} must be an object`, { field });
  if ((r.cidr === undefined) === (r.domain === undefined)) throw invalidArgument(`${field}: give exactly one of cidr or domain`, { field });
  const protocol = r.protocol ?? (kind === 'allow' && r.domain !== undefined ? 'tcp' : 'any');
  if (!PROTOCOLS.includes(protocol)) throw invalidArgument(`${field}.protocol must be one of ${PROTOCOLS.join(', ')}`, { field: `${field}.protocol` });
  let ports = normPorts(r.ports ?? [], `${field}.ports`);
  if (ports.length && (protocol === 'icmp' || protocol === 'any')) {
    throw invalidArgument(`${field}.ports: ports need protocol tcp or udp (got ${protocol})`, { field: `${field}.ports` });
  }
  if (kind === 'allow' && r.domain !== undefined && !ports.length && protocol === 'tcp') ports = ['80', '443'];
  if (r.domain !== undefined) {
    const d = String(r.domain).toLowerCase().replace(/\.$/, '');
    if (!DOMAIN_RE.test(d) || !d.includes('.')) throw invalidArgument(`${field}.domain: ${JSON.stringify(r.domain)} is not a domain name`, { field: `${field}.domain` });
    return { domain: d, protocol, ports };
  }
  const c = requireCidr(String(r.cidr), `${field}.cidr`);
  if (kind === 'allow') {
    const never = NEVER_ALLOWED.find((n) => cidrsOverlap(n, c));
    if (never) throw invalidArgument(`${field}.cidr: ${formatCidr(c)} overlaps ${formatCidr(never)}, which is never reachable`, { field: `${field}.cidr` });
    const priv = PRIVATE_RANGES.find((p) => cidrsOverlap(p, c));
    if (priv && !allowPrivate.some((a) => { const ac = parseCidr(a); return ac !== null && ac.prefix <= c.prefix && cidrsOverlap(ac, c); })) {
      throw invalidArgument(`${field}.cidr: ${formatCidr(c)} is in the private range ${formatCidr(priv)}; list it in allowPrivate to allow it`, { field: `${field}.cidr` });
    }
  }
  return { cidr: formatCidr(c), protocol, ports };
}

/** Validates and fills defaults; errors name the field (prefix `field`, e.g. `network`). */
export function resolvePolicy(input: PolicyInput | undefined, field = 'network'): NetworkPolicy {
  if (input === undefined) return structuredClone(DEFAULT_POLICY);
  if (typeof input !== 'object' || input === null) throw invalidArgument(`${field} must be an object`, { field });
  const preset = input.preset ?? 'default';
  if (!PRESETS.includes(preset)) throw invalidArgument(`${field}.preset must be one of ${PRESETS.join(', ')} (got ${JSON.stringify(preset)})`, { field: `${field}.preset` });
  const allowPrivate = (input.allowPrivate ?? []).map((s, i) => {
    const c = requireCidr(String(s), `${field}.allowPrivate[${i}]`);
    const never = NEVER_ALLOWED.find((n) => cidrsOverlap(n, c));
    if (never) throw invalidArgument(`${field}.allowPrivate[${i}]: ${formatCidr(c)} overlaps ${formatCidr(never)}, which is never reachable`, { field: `${field}.allowPrivate` });
    return formatCidr(c);
  });
  if (allowPrivate.length > POLICY_LIMITS.allowPrivate) throw invalidArgument(`${field}.allowPrivate: at most ${POLICY_LIMITS.allowPrivate} ranges`, { field: `${field}.allowPrivate` });
  const allow = (input.allow ?? []).map((r, i) => normRule(r, `${field}.allow[${i}]`, 'allow', allowPrivate));
  const deny = (input.deny ?? []).map((r, i) => normRule(r, `${field}.deny[${i}]`, 'deny', allowPrivate));
  if (preset === 'none' && (allow.length || allowPrivate.length)) {
    throw invalidArgument(`${field}.allow: preset none allows nothing; leave allow and allowPrivate empty`, { field: `${field}.allow` });
  }
  if (allow.length + deny.length > POLICY_LIMITS.rules) throw invalidArgument(`${field}: at most ${POLICY_LIMITS.rules} rules`, { field });
  if ([...allow, ...deny].filter((r) => r.domain).length > POLICY_LIMITS.domains) {
    throw invalidArgument(`${field}: at most ${POLICY_LIMITS.domains} domain rules`, { field });
  }
  return { preset, allow, deny, allowPrivate };
}
