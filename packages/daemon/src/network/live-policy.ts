/**
 * Changing a running sandbox's policy, and keeping its denied-domain addresses current.
 * A change is one nft transaction (renderPolicy) that already holds the addresses the new
 * policy's denied domains resolve to, so there is no moment in which a denied domain's
 * address is reachable; the resolver restarts only when its domain lists change.
 */
import { deniedDomains, deniedNamesSeen, renderDeniedAdd, resolveInNetns } from './denied-domains.js';
import { nftApply } from './host-cmd.js';
import type { NetNames } from './names.js';
import { domainGroups, renderPolicy } from './nft-sandbox.js';
import type { NetworkPolicy } from './policy.js';
import { readResolverLog, startResolver } from './resolver.js';

export interface LivePolicyContext {
  names: NetNames;
  runDir: string;
  gateway: string;
  /** The resolver's upstream servers ([] without an uplink: nothing to resolve through). */
  upstream: string[];
}

const resolverInputs = (p: NetworkPolicy) => JSON.stringify([domainGroups(p), p.deny.filter((r) => r.domain)]);

/** Names to resolve for the denied-domain set: the domains and their subdomains the guest asked for. */
async function deniedNames(ctx: LivePolicyContext, policy: NetworkPolicy): Promise<string[]> {
  const domains = deniedDomains(policy);
  if (!domains.length) return [];
  const seen = deniedNamesSeen(await readResolverLog(ctx.runDir, 256 * 1024).catch(() => ''), domains);
  return [...new Set([...domains, ...seen])];
}

/** Puts `after` in force (from `before`). */
export async function applyLivePolicy(ctx: LivePolicyContext, before: NetworkPolicy, after: NetworkPolicy): Promise<void> {
  const denied = await resolveInNetns(ctx.names.netns, ctx.upstream, await deniedNames(ctx, after));
  await nftApply(renderPolicy({ names: ctx.names, policy: after, denied }), ctx.names.netns);
  if (resolverInputs(after) !== resolverInputs(before)) {
    await startResolver({ names: ctx.names, runDir: ctx.runDir, gateway: ctx.gateway, upstream: ctx.upstream, policy: after });
  }
}

/** Resolves the denied domains again and adds (renews) their addresses. */
export async function refreshDeniedAddresses(ctx: LivePolicyContext, policy: NetworkPolicy): Promise<number> {
  const answers = await resolveInNetns(ctx.names.netns, ctx.upstream, await deniedNames(ctx, policy));
  const script = renderDeniedAdd(ctx.names, answers);
  if (script) await nftApply(script, ctx.names.netns);
  return answers.length;
}

/** Runs tasks of one key one after another (a sandbox's policy changes), others concurrently. */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const next = (this.tails.get(key) ?? Promise.resolve()).catch(() => undefined).then(task);
    this.tails.set(key, next);
    const clear = () => {
      if (this.tails.get(key) === next) this.tails.delete(key);
    };
    next.then(clear, clear);
    return next;
  }
}
