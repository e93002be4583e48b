/**
 * The network service: what the sandbox manager and the API use. It owns the leases, the
 * per-sandbox topology (topology.ts), live policy changes, accounting and orphan cleanup.
 */
import { existsSync } from 'node:fs';
import { runDirOf } from '../sandbox/run-dir.js';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { KilnError } from '../errors.js';
import { macFor, type SandboxAddresses } from './address-plan.js';
import { checkNetworkConfig, type NetworkConfig, resolvConfServers } from './config.js';
import { FlowStore, type FlowRecord } from './flow-store.js';
import { type NetCounters, parseAccounting } from './flows.js';
import type { GuestNetConfig } from './guest.js';
import { hostCmd, nftApply } from './host-cmd.js';
import { type Cidr, cidrContains, formatCidr, parseCidr, parseIpv4 } from './ipv4.js';
import { LeaseStore, type Lease } from './leases.js';
import { type NetNames, netNames } from './names.js';
import { renderHostAddresses, renderPolicy, domainGroups } from './nft-sandbox.js';
import { type NetworkPolicy, type PolicyInput, resolvePolicy } from './policy.js';
import { capResolverLog, readResolverLog, startResolver } from './resolver.js';
import { buildEgress, buildTap, findNetworkResources, removeTopology, type TopologyParams } from './topology.js';
import { type Uplink, formatUplink, parseUplink, uplinkNetns } from './uplink.js';

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

export interface NetworkServiceOptions {
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
  private readonly flowStore: FlowStore;
  private readonly dnsUpstream: string[];
  private hostAddrs: string[] = [];
  private readonly counters = new Map<string, NetCounters>();
  private timers: NodeJS.Timeout[] = [];
  private polling: Promise<void> | null = null;

  constructor(private readonly o: NetworkServiceOptions) {
    checkNetworkConfig(o.config);
    this.uplink = parseUplink(o.config.uplink);
    this.subnet = parseCidr(o.config.subnet) as Cidr;
    this.leases = new LeaseStore(o.db);
    this.flowStore = new FlowStore(o.db);
    this.dnsUpstream = o.config.dnsUpstream ?? resolvConfServers();
  }

  /** Checks the host's tools and the uplink; starts the accounting and host-address timers. */
  async init(): Promise<void> {
    for (const [tool, arg] of [['ip', '-V'], ['nft', '--version'], ['dnsmasq', '--version'], ['sysctl', '--version']] as const) {
      await hostCmd(tool, [arg]).catch((err: unknown) => {
        throw new KilnError('NETWORK_UNAVAILABLE', `${tool} is missing or broken (scripts/setup.sh installs it): ${(err as Error).message}`, { cause: err });
      });
    }
    if (this.uplink.kind === 'netns') {
      const list = await hostCmd('ip', ['netns', 'list']);
      if (!list.split('\n').some((l) => l.split(' ')[0] === (this.uplink as { name: string }).name)) {
        throw new KilnError('NETWORK_UNAVAILABLE', `uplink network namespace ${this.uplink.name} does not exist`, { details: { field: 'network.uplink' } });
      }
    }
    if (this.uplink.kind === 'host') await hostCmd('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    if (this.uplink.kind !== 'none' && !this.dnsUpstream.length) this.o.logger.warn('no upstream DNS server: sandbox resolvers answer only denied names');
    this.hostAddrs = await this.readHostAddrs();
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
    const lease = this.leases.allocate(sandboxId, this.subnet, policy);
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
    this.flowStore.deleteFor(sandboxId);
    this.counters.delete(sandboxId);
    this.leases.release(sandboxId);
  }

  /** Replaces a running sandbox's policy, live: new connections follow it at once. */
  async setPolicy(sandboxId: string, input: PolicyInput): Promise<NetworkPolicy> {
    const lease = this.leases.get(sandboxId);
    if (!lease) throw new KilnError('NETWORK_NOT_FOUND', `sandbox ${sandboxId} has no network`, { status: 404 });
    const policy = resolvePolicy(input, 'policy');
    const names = netNames(sandboxId);
    const before = JSON.stringify([domainGroups(lease.policy), lease.policy.deny.filter((r) => r.domain)]);
    await nftApply(renderPolicy({ names, policy }), names.netns);
    if (JSON.stringify([domainGroups(policy), policy.deny.filter((r) => r.domain)]) !== before) {
      await startResolver({ names, runDir: this.runDir(sandboxId), gateway: lease.addresses.gateway, upstream: uplinkNetns(this.uplink) === undefined ? [] : this.dnsUpstream, policy });
    }
    this.leases.setPolicy(sandboxId, policy);
    return policy;
  }

  /** Reads counters and flows from nftables now (also done every flowPollMs). */
  async poll(sandboxId: string): Promise<NetCounters> {
    const lease = this.leases.get(sandboxId);
    if (!lease) throw new KilnError('NETWORK_NOT_FOUND', `sandbox ${sandboxId} has no network`, { status: 404 });
    const names = netNames(sandboxId);
    const json = await hostCmd('nft', ['-j', 'list', 'ruleset'], { netns: names.netns });
    const { counters, flows } = parseAccounting(json, names.table, {
      guest: lease.addresses.guest,
      gateway: lease.addresses.gateway,
      subnet: lease.subnet,
      hostAddrs: this.hostAddrs,
    });
    this.flowStore.merge(sandboxId, flows);
    this.counters.set(sandboxId, counters);
    return counters;
  }

  async flows(sandboxId: string, opts: { limit?: number; verdict?: 'accept' | 'drop' } = {}): Promise<{ counters: NetCounters; flows: FlowRecord[] }> {
    const counters = await this.poll(sandboxId);
    return { counters, flows: this.flowStore.list(sandboxId, opts) };
  }

  /** The resolver's query log (the last `maxBytes`). */
  async dnsLog(sandboxId: string, maxBytes = 64 * 1024): Promise<string> {
    return readResolverLog(this.runDir(sandboxId), maxBytes);
  }

  private async pollAll(): Promise<void> {
    if (this.polling) return;
    this.polling = (async () => {
      for (const l of this.leases.list()) {
        await this.poll(l.sandboxId).catch(() => undefined);
        await capResolverLog(this.runDir(l.sandboxId)).catch(() => undefined);
      }
    })().finally(() => (this.polling = null));
    await this.polling;
  }

  private async readHostAddrs(): Promise<string[]> {
    const out = JSON.parse(await hostCmd('ip', ['-j', '-4', 'addr', 'show'])) as Array<{ addr_info?: Array<{ local?: string }> }>;
    const addrs = new Set<string>();
    for (const link of out) {
      for (const a of link.addr_info ?? []) {
        const ip = a.local ? parseIpv4(a.local) : null;
        if (ip !== null && !cidrContains(this.subnet, ip) && a.local) addrs.add(a.local);
      }
    }
    return [...addrs].sort();
  }

  private async refreshHostAddrs(): Promise<void> {
    try {
      const next = await this.readHostAddrs();
      if (next.join() === this.hostAddrs.join()) return;
      this.o.logger.info({ hostAddrs: next }, 'host addresses changed; updating every sandbox');
      this.hostAddrs = next;
      for (const l of this.leases.list()) {
        const names = netNames(l.sandboxId);
        await nftApply(renderHostAddresses(names, next), names.netns).catch((err: unknown) => this.o.logger.warn({ err, sandboxId: l.sandboxId }, 'host address update failed'));
      }
    } catch (err) {
      this.o.logger.warn({ err }, 'reading host addresses failed');
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
    for (const h of found) if (existsSync(this.runDir(`sb-${h}`))) ours.add(h);
    return [...ours].filter((h) => !knownIds.has(`sb-${h}`)).sort();
  }

  /** Removes every network resource, flow and lease of the sandbox with this id hex. */
  async cleanupNetwork(idHex: string): Promise<void> {
    this.o.logger.warn({ sandboxId: `sb-${idHex}` }, 'removing orphaned network resources');
    await this.teardown(`sb-${idHex}`);
  }
}
