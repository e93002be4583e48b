/**
 * The network service: what the sandbox manager and the API use. It owns the leases, the
 * per-sandbox topology (topology.ts), live policy changes, accounting and orphan cleanup.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { runDirOf } from '../sandbox/run-dir.js';
import { hostKey, isSandboxId } from '../sandbox/ids.js';
import { KilnError } from '../errors.js';
import { macFor, type SandboxAddresses } from './address-plan.js';
import { checkNetworkConfig, type NetworkConfig, resolvConfServers } from './config.js';
import type { FlowRecord } from './flow-store.js';
import type { NetCounters } from './flows.js';
import { NetAccounting } from './accounting.js';
import type { GuestNetConfig } from './guest.js';
import { nftApply } from './host-cmd.js';
import { type Cidr, formatCidr, parseCidr } from './ipv4.js';
import { LeaseStore, type Lease } from './leases.js';
import { type NetNames, netNames } from './names.js';
import { renderHostAddresses } from './nft-sandbox.js';
import { KeyedQueue, type LivePolicyContext, applyLivePolicy, refreshDeniedAddresses } from './live-policy.js';
import { type NetworkPolicy, type PolicyInput, resolvePolicy } from './policy.js';
import { applyPolicyPatch, type PolicyPatch } from './policy-patch.js';
import { capResolverLog, readResolverLog } from './resolver.js';
import { buildEgress, buildTap, findNetworkResources, removeTopology, type TopologyParams } from './topology.js';
import { type Uplink, checkHostTools, formatUplink, parseUplink, uplinkNetns } from './uplink.js';
import { acquireSubnetLock, type SubnetLock } from './subnet-lock.js';
import { busySlots, readHostAddrs } from './host-addresses.js';
import { collectForeignOrphans } from './foreign-orphans.js';

export interface SandboxNetwork {
  sandboxId: string;
  names: NetNames;
  addresses: SandboxAddresses;
  mac: string;
  policy: NetworkPolicy;
  /** For VmSpec.net: QEMU runs in `netns` and opens `tap`. */
  vm: { netns: string; tap: string; mac: string };
  /** For applyGuestNetwork. */
  guest: GuestNetConfig;
}

/** A policy change as it happened: for the audit record and the sandbox's events. */
export interface PolicyChange {
  how: 'replace' | 'patch';
  before: NetworkPolicy;
  after: NetworkPolicy;
}

export interface NetworkServiceOptions {
  /** Called after every policy change is in force. */
  onPolicyChanged?: (sandboxId: string, change: PolicyChange) => void;
  config: NetworkConfig;
  db: Database.Database;
  /** Where sandbox run directories live (<stateDir>/sandboxes); the resolver keeps its files there. */
  sandboxesDir: string;
  logger: Logger;
}

export class NetworkService {
  readonly uplink: Uplink;
  readonly subnet: Cidr;
  private readonly leases: LeaseStore;
  private readonly accounting: NetAccounting;
  private readonly dnsUpstream: string[];
  private hostAddrs: string[] = [];
  private timers: NodeJS.Timeout[] = [];
  private polling: Promise<void> | null = null;
  private readonly policyQueue = new KeyedQueue();
  private deniedRefreshedAt = 0;
  private lock: SubnetLock | null = null;

  constructor(private readonly o: NetworkServiceOptions) {
    checkNetworkConfig(o.config);
    this.uplink = parseUplink(o.config.uplink);
    this.subnet = parseCidr(o.config.subnet) as Cidr;
    this.leases = new LeaseStore(o.db);
    this.accounting = new NetAccounting(o.db);
    this.dnsUpstream = o.config.dnsUpstream ?? resolvConfServers();
  }

  /** Checks the host's tools and the uplink; starts the accounting and host-address timers. */
  async init(): Promise<void> {
    await checkHostTools(this.uplink);
    if (this.uplink.kind !== 'none' && !this.dnsUpstream.length) this.o.logger.warn('no upstream DNS server: sandbox resolvers answer only denied names');
    // Before anything is built or removed: this subnet is ours alone on this host.
    this.lock = await acquireSubnetLock(this.subnet, { lockDir: this.o.config.lockDir, stateDir: dirname(this.o.sandboxesDir) });
    this.hostAddrs = await readHostAddrs(this.subnet);
    this.o.logger.info({ uplink: formatUplink(this.uplink), subnet: formatCidr(this.subnet), dnsUpstream: this.dnsUpstream }, 'network');
    const poll = setInterval(() => void this.pollAll(), this.o.config.flowPollMs);
    const refresh = setInterval(() => void this.refreshHostAddrs(), this.o.config.hostAddrRefreshMs);
    poll.unref();
    refresh.unref();
    this.timers = [poll, refresh];
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.lock?.release();
    this.lock = null;
  }

  /** Validates a policy (INVALID_ARGUMENT naming the field). */
  resolvePolicy(input: PolicyInput | undefined, field = 'network'): NetworkPolicy {
    return resolvePolicy(input, field);
  }

  private runDir(sandboxId: string): string {
    return runDirOf(this.o.sandboxesDir, sandboxId);
  }

  private view(lease: Lease): SandboxNetwork {
    const names = netNames(lease.sandboxId);
    const a = lease.addresses;
    const mac = macFor(names.idHex);
    return {
      sandboxId: lease.sandboxId,
      names,
      addresses: a,
      mac,
      policy: lease.policy,
      vm: { netns: names.netns, tap: names.tap, mac },
      guest: { mac, address: `${a.guest}/${a.guestPrefix}`, gateway: a.gateway, dns: [a.gateway] },
    };
  }

  get(sandboxId: string): SandboxNetwork | null {
    const lease = this.leases.get(sandboxId);
    return lease ? this.view(lease) : null;
  }

  /** Leases an address block and builds the sandbox's netns, TAP, veth, tables and resolver. */
  async setup(sandboxId: string, policy: NetworkPolicy): Promise<SandboxNetwork> {
    const { net, complete } = await this.setupStaged(sandboxId, policy);
    try {
      await complete;
    } catch (err) {
      await this.teardown(sandboxId).catch(() => undefined);
      throw err;
    }
    return net;
  }

  /**
   * Like setup, in two stages, so a VMM can start while the second runs: resolves once the
   * netns and TAP exist (a failure there leaves nothing behind); `complete` settles when the
   * veth, routes, nftables policy and resolver are in place. The guest must not run before
   * `complete` resolved; when it rejects, the caller tears the network down.
   */
  async setupStaged(sandboxId: string, policy: NetworkPolicy): Promise<{ net: SandboxNetwork; complete: Promise<void> }> {
    // Blocks whose addresses something else holds in the uplink namespace (another instance's
    // leftovers) are skipped instead of failing at `ip addr add`.
    const up = uplinkNetns(this.uplink);
    const busy = up === undefined ? new Set<number>() : await busySlots(this.subnet, up);
    const lease = this.leases.allocate(sandboxId, this.subnet, policy, (slot) => busy.has(slot));
    const net = this.view(lease);
    const params: TopologyParams = {
      names: net.names,
      addresses: net.addresses,
      mac: net.mac,
      subnet: lease.subnet,
      uplink: this.uplink,
      hostAddrs: this.hostAddrs,
      dnsUpstream: this.dnsUpstream,
      policy,
      runDir: this.runDir(sandboxId),
      ...(this.o.config.tapUid !== null ? { tapUid: this.o.config.tapUid } : {}),
    };
    try {
      await buildTap(params);
    } catch (err) {
      await this.teardown(sandboxId).catch(() => undefined);
      throw err;
    }
    const complete = buildEgress(params);
    complete.catch(() => undefined); // the caller's to await
    return { net, complete };
  }

  /** Removes everything of the sandbox's network, its flow history and its lease. Idempotent. */
  async teardown(sandboxId: string): Promise<void> {
    await removeTopology(netNames(sandboxId), this.uplink, this.runDir(sandboxId));
    this.accounting.forget(sandboxId);
    this.leases.release(sandboxId);
  }

  private liveCtx(lease: Lease): LivePolicyContext {
    const names = netNames(lease.sandboxId);
    return { names, runDir: this.runDir(lease.sandboxId), gateway: lease.addresses.gateway, upstream: uplinkNetns(this.uplink) === undefined ? [] : this.dnsUpstream };
  }

  /**
   * Changes a running sandbox's policy, live (new connections follow it at once): `replace`
   * puts `input` in force as a whole (PUT), `patch` changes only what it names (PATCH,
   * policy-patch.ts). Changes of one sandbox are serialised, so two patches never lose one.
   */
  changePolicy(sandboxId: string, change: { replace: PolicyInput } | { patch: PolicyPatch }): Promise<PolicyChange> {
    const run = async (): Promise<PolicyChange> => {
      const lease = this.leases.get(sandboxId);
      if (!lease) throw new KilnError('NETWORK_NOT_FOUND', `sandbox ${sandboxId} has no network`, { status: 404 });
      const before = lease.policy;
      const after = 'replace' in change ? resolvePolicy(change.replace, 'policy') : applyPolicyPatch(before, change.patch);
      await applyLivePolicy(this.liveCtx(lease), before, after);
      this.leases.setPolicy(sandboxId, after);
      const result: PolicyChange = { how: 'replace' in change ? 'replace' : 'patch', before, after };
      this.o.onPolicyChanged?.(sandboxId, result);
      return result;
    };
    return this.policyQueue.run(sandboxId, run);
  }

  /** Replaces the policy (kept for callers that set a whole policy, e.g. a pool claim). */
  async setPolicy(sandboxId: string, input: PolicyInput): Promise<NetworkPolicy> {
    return (await this.changePolicy(sandboxId, { replace: input })).after;
  }

  /** Reads counters and flows from nftables now (also done every flowPollMs). */
  async poll(sandboxId: string): Promise<NetCounters> {
    const lease = this.leases.get(sandboxId);
    if (!lease) throw new KilnError('NETWORK_NOT_FOUND', `sandbox ${sandboxId} has no network`, { status: 404 });
    return this.accounting.poll(lease, this.hostAddrs);
  }

  /**
   * The guest's byte counters for the resource sampler (`kiln stats`, /metrics): the latest
   * read (every flowPollMs), or read now when `fresh` or not read yet. Null without a network.
   */
  async byteCounters(sandboxId: string, fresh = false): Promise<{ rxBytes: number; txBytes: number } | null> {
    if (!this.leases.get(sandboxId)) return null;
    const c = (fresh ? undefined : this.accounting.latest(sandboxId)) ?? (await this.poll(sandboxId).catch(() => undefined));
    return c ? { rxBytes: c.bytesIn, txBytes: c.bytesOut } : null;
  }

  async flows(sandboxId: string, opts: { limit?: number; verdict?: 'accept' | 'drop' } = {}): Promise<{ counters: NetCounters; flows: FlowRecord[] }> {
    const counters = await this.poll(sandboxId);
    return { counters, flows: this.accounting.list(sandboxId, opts) };
  }

  /** The resolver's query log (the last `maxBytes`). */
  async dnsLog(sandboxId: string, maxBytes = 64 * 1024): Promise<string> {
    return readResolverLog(this.runDir(sandboxId), maxBytes);
  }

  private async pollAll(): Promise<void> {
    if (this.polling) return;
    this.polling = (async () => {
      const refreshDenied = Date.now() - this.deniedRefreshedAt >= this.o.config.deniedRefreshMs;
      if (refreshDenied) this.deniedRefreshedAt = Date.now();
      for (const l of this.leases.list()) {
        await this.poll(l.sandboxId).catch(() => undefined);
        await capResolverLog(this.runDir(l.sandboxId)).catch(() => undefined);
        if (refreshDenied && l.policy.deny.some((r) => r.domain)) {
          await refreshDeniedAddresses(this.liveCtx(l), l.policy).catch((err: unknown) => this.o.logger.warn({ err, sandboxId: l.sandboxId }, 'refreshing denied-domain addresses failed'));
        }
      }
    })().finally(() => (this.polling = null));
    await this.polling;
  }

  private async refreshHostAddrs(): Promise<void> {
    const next = await readHostAddrs(this.subnet).catch((err: unknown) => void this.o.logger.warn({ err }, 'reading host addresses failed'));
    if (!next || next.join() === this.hostAddrs.join()) return;
    this.o.logger.info({ hostAddrs: next }, 'host addresses changed; updating every sandbox');
    this.hostAddrs = next;
    for (const l of this.leases.list()) {
      const names = netNames(l.sandboxId);
      await nftApply(renderHostAddresses(names, next), names.netns).catch((err: unknown) => this.o.logger.warn({ err, sandboxId: l.sandboxId }, 'host address update failed'));
    }
  }

  /**
   * Id hexes of this kilnd's network resources that belong to none of `knownIds`. "This
   * kilnd's": a lease in its database (written before anything is built, deleted only after
   * everything is gone) or a run directory under its state directory. Resources of another
   * kilnd on the same host (another state directory) are never touched.
   */
  async listNetworkOrphans(knownIds: ReadonlySet<string>): Promise<string[]> {
    const ours = new Set(this.leases.list().map((l) => netNames(l.sandboxId).idHex));
    const found = await findNetworkResources(this.uplink);
    const runDirKeys = new Set(existsSync(this.o.sandboxesDir) ? readdirSync(this.o.sandboxesDir).filter(isSandboxId).map(hostKey) : []);
    for (const h of found) if (runDirKeys.has(h)) ours.add(h);
    const known = new Set([...knownIds].map(hostKey));
    return [...ours].filter((h) => !known.has(h)).sort();
  }

  /** `kiln gc`: kiln network objects and resolvers no live kilnd owns (foreign-orphans.ts). */
  async collectForeign(known: (hex: string) => boolean): Promise<{ removed: string[]; skipped: string[] }> {
    if (!this.lock) return { removed: [], skipped: [] };
    const r = await collectForeignOrphans({ subnet: this.subnet, lockDir: this.o.config.lockDir, ownLockPath: this.lock.path, uplink: this.uplink, known });
    if (r.removed.length || r.skipped.length) this.o.logger.warn(r, 'gc: network objects of no live sandbox');
    return r;
  }

  /** Removes every network resource, flow and lease of the sandbox with this id hex. */
  async cleanupNetwork(idHex: string): Promise<void> {
    // The lease names the whole id (its row goes with the teardown); without one, names suffice.
    const id = this.leases.list().find((l) => hostKey(l.sandboxId) === idHex)?.sandboxId ?? `sb-${idHex}`;
    this.o.logger.warn({ sandboxId: id }, 'removing orphaned network resources');
    await this.teardown(id);
  }
}
