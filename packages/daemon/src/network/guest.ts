/**
 * Configures the guest side of a sandbox's network through its agent (`sys.network`): MAC,
 * address, default route and resolver. Called after the agent first answers on a cold boot,
 * and after every snapshot restore (a restored NIC still has the template's MAC and address).
 * Idempotent. Until it has run, the host drops everything the guest sends (MAC/IP pinning).
 */
import type { AgentClient } from '@kiln/protocol';

export interface GuestNetConfig {
  mac: string;
  /** Address with prefix length, e.g. 10.210.0.2/30. */
  address: string;
  gateway: string;
  dns: string[];
}

export type NetworkAgent = Pick<AgentClient, 'network'>;

export async function applyGuestNetwork(agent: NetworkAgent, cfg: GuestNetConfig): Promise<{ interface: string; durationMs: number }> {
  return agent.network({ mac: cfg.mac, address: cfg.address, gateway: cfg.gateway, dns: cfg.dns, mtu: 1500 });
}
