/**
 * A change to a policy that names only what it changes (PATCH …/network/policy, `kiln net set`):
 *
 *   { preset?: P,
 *     allow?:        { add?: Rule[], remove?: RuleRef[] },
 *     deny?:         { add?: Rule[], remove?: RuleRef[] },
 *     allowPrivate?: { add?: CIDR[], remove?: CIDR[] } }
 *
 * Everything the patch does not name stays as it is. Strict, so that a typo never widens or
 * silently keeps egress: a patch that names nothing is refused; `remove` must match something
 * in the current policy (a RuleRef with only cidr/domain removes every rule for that target,
 * with protocol and/or ports it removes the rule that normalises to exactly that); adding a
 * rule already present is a no-op; the same rule added and removed in one patch is refused.
 * The result is validated as a whole policy (resolvePolicy), so e.g. preset none with an
 * allow-list is refused. Errors are INVALID_ARGUMENT naming the field (`patch.allow.remove[0]`).
 */
import { invalidArgument } from '../errors.js';
import { formatCidr, requireCidr } from './ipv4.js';
import { type NetworkPolicy, type PolicyInput, type PolicyRule, type Preset, type RuleInput, resolvePolicy } from './policy.js';

export interface ListPatch<T> {
  add?: T[];
  remove?: T[];
}

export interface PolicyPatch {
  preset?: Preset;
  allow?: ListPatch<RuleInput>;
  deny?: ListPatch<RuleInput>;
  allowPrivate?: ListPatch<string>;
}

const ruleKey = (r: PolicyRule): string => JSON.stringify([r.cidr ?? null, r.domain ?? null, r.protocol, [...r.ports].sort()]);
const targetKey = (r: { cidr?: string; domain?: string }): string => JSON.stringify([r.cidr ?? null, r.domain ?? null]);

/** Normalises one rule the way resolvePolicy does (validation included) by resolving a tiny policy. */
function normOne(r: RuleInput, kind: 'allow' | 'deny', field: string, allowPrivate: string[]): PolicyRule {
  try {
    const p = resolvePolicy({ preset: 'locked', [kind]: [r], allowPrivate } as PolicyInput, field);
    return (kind === 'allow' ? p.allow[0] : p.deny[0]) as PolicyRule;
  } catch (err) {
    // resolvePolicy names `${field}.allow[0]`; the patch field is already in `field`.
    const e = err as Error & { details?: { field?: string } };
    const fix = (s: string) => s.replace(`${field}.${kind}[0]`, field);
    e.message = fix(e.message);
    if (e.details?.field) e.details.field = fix(e.details.field);
    throw e;
  }
}

function patchRules(current: PolicyRule[], lp: ListPatch<RuleInput> | undefined, kind: 'allow' | 'deny', allowPrivate: string[]): PolicyRule[] {
  if (lp === undefined) return current;
  const field = `patch.${kind}`;
  if (typeof lp !== 'object' || lp === null) throw invalidArgument(`${field} must be an object {add, remove}`, { field });
  let out = [...current];
  const added = new Set<string>();
  (lp.add ?? []).forEach((r, i) => {
    const n = normOne(r, kind, `${field}.add[${i}]`, allowPrivate);
    added.add(ruleKey(n));
    if (!out.some((x) => ruleKey(x) === ruleKey(n))) out.push(n);
  });
  (lp.remove ?? []).forEach((r, i) => {
    const f = `${field}.remove[${i}]`;
    if (typeof r !== 'object' || r === null) throw invalidArgument(`${f} must be an object`, { field: f });
    const targetOnly = r.protocol === undefined && r.ports === undefined;
    // A target-only reference is normalised as a deny rule (no protocol defaults, no range checks).
    const n = normOne(r, targetOnly ? 'deny' : kind, f, allowPrivate);
    const hit = (x: PolicyRule) => (targetOnly ? targetKey(x) === targetKey(n) : ruleKey(x) === ruleKey(n));
    if (out.some((x) => added.has(ruleKey(x)) && hit(x))) throw invalidArgument(`${f}: the same patch adds this rule`, { field: f });
    if (!out.some(hit)) throw invalidArgument(`${f}: no ${kind} rule ${describe(r)} in the current policy`, { field: f });
    out = out.filter((x) => !hit(x));
  });
  return out;
}

const describe = (r: RuleInput): string =>
  [r.cidr ?? r.domain, r.protocol, r.ports?.length ? r.ports.join(',') : undefined].filter((x) => x !== undefined).join(':');

function patchCidrs(current: string[], lp: ListPatch<string> | undefined): string[] {
  if (lp === undefined) return current;
  const field = 'patch.allowPrivate';
  if (typeof lp !== 'object' || lp === null) throw invalidArgument(`${field} must be an object {add, remove}`, { field });
  const out = [...current];
  const norm = (s: string, f: string) => formatCidr(requireCidr(String(s), f));
  const added = (lp.add ?? []).map((s, i) => norm(s, `${field}.add[${i}]`));
  for (const c of added) if (!out.includes(c)) out.push(c);
  (lp.remove ?? []).forEach((s, i) => {
    const f = `${field}.remove[${i}]`;
    const c = norm(s, f);
    if (added.includes(c)) throw invalidArgument(`${f}: the same patch adds ${c}`, { field: f });
    const at = out.indexOf(c);
    if (at < 0) throw invalidArgument(`${f}: ${c} is not in allowPrivate`, { field: f });
    out.splice(at, 1);
  });
  return out;
}

const countOps = (lp: ListPatch<unknown> | undefined) => (lp?.add?.length ?? 0) + (lp?.remove?.length ?? 0);

/** The policy after `patch`; `current` is not modified. */
export function applyPolicyPatch(current: NetworkPolicy, patch: PolicyPatch): NetworkPolicy {
  if (typeof patch !== 'object' || patch === null) throw invalidArgument('patch must be an object', { field: 'patch' });
  if (patch.preset === undefined && !countOps(patch.allow) && !countOps(patch.deny) && !countOps(patch.allowPrivate)) {
    throw invalidArgument('patch changes nothing: give preset or add/remove entries of allow, deny or allowPrivate', { field: 'patch' });
  }
  // Private ranges first: an allow rule added in the same patch may need one.
  const allowPrivate = patchCidrs(current.allowPrivate, patch.allowPrivate);
  const allow = patchRules(current.allow, patch.allow, 'allow', allowPrivate);
  const deny = patchRules(current.deny, patch.deny, 'deny', allowPrivate);
  return resolvePolicy({ preset: patch.preset ?? current.preset, allow, deny, allowPrivate }, 'policy');
}
