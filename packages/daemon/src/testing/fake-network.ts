/**
 * A network service double for fast unit tests: leases and policies in memory, no netns, TAP or
 * nft. Each policy change takes a turn of the event loop (`setPolicyDelayMs`), as the real one
 * awaits nft and the resolver; `failSetPolicy` makes the next changes fail.
 */
import type { NetworkService, SandboxNetwork } from '../network/service.js';
import { hostKey } from '../sandbox/ids.js';
import { resolvePolicy, type NetworkPolicy, type PolicyInput } from '../network/policy.js';

export class FakeNetwork {
  readonly nets = new Map<string, SandboxNetwork>();
  /** Every setPolicy call, in order. */
  readonly policyCalls: Array<{ sandboxId: string; policy: NetworkPolicy }> = [];
  failSetPolicy: Error | null = null;

  constructor(readonly setPolicyDelayMs = 5) {}

  /** Typed as the real service, for ManagerOptions.network. */
  asService(): NetworkService {
    return this as unknown as NetworkService;
  }

  resolvePolicy(input: PolicyInput | undefined, field = 'network'): NetworkPolicy {
    return resolvePolicy(input, field);
  }

  get(sandboxId: string): SandboxNetwork | null {
    return this.nets.get(sandboxId) ?? null;
  }

  async setupStaged(sandboxId: string, policy: NetworkPolicy): Promise<{ net: SandboxNetwork; complete: Promise<void> }> {
    const hex = hostKey(sandboxId);
    const net = {
      sandboxId,
      names: { netns: `kiln-${hex}`, tap: `kt${hex}` },
      mac: '02:00:00:00:00:01',
      policy,
      vm: { netns: `kiln-${hex}`, tap: `kt${hex}`, mac: '02:00:00:00:00:01' },
      guest: { mac: '02:00:00:00:00:01', address: '10.0.0.2/30', gateway: '10.0.0.1', dns: ['10.0.0.1'] },
    } as unknown as SandboxNetwork;
    this.nets.set(sandboxId, net);
    return { net, complete: Promise.resolve() };
  }

  async setPolicy(sandboxId: string, input: PolicyInput): Promise<NetworkPolicy> {
    const policy = resolvePolicy(input, 'policy');
    this.policyCalls.push({ sandboxId, policy });
    await new Promise((r) => setTimeout(r, this.setPolicyDelayMs));
    if (this.failSetPolicy) throw this.failSetPolicy;
    const net = this.nets.get(sandboxId);
    if (!net) throw new Error(`sandbox ${sandboxId} has no network`);
    net.policy = policy;
    return policy;
  }

  async teardown(sandboxId: string): Promise<void> {
    this.nets.delete(sandboxId);
  }

  async listNetworkOrphans(known: ReadonlySet<string>): Promise<string[]> {
    return [...this.nets.keys()].filter((id) => !known.has(id)).map(hostKey);
  }

  async cleanupNetwork(hex: string): Promise<void> {
    for (const id of [...this.nets.keys()]) if (hostKey(id) === hex) this.nets.delete(id);
  }
}
