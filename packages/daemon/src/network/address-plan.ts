/**
 * The address plan. The sandbox subnet (config `network.subnet`, default 10.210.0.0/16) is cut
 * into /29 blocks, one per sandbox, numbered by slot (block = subnet base + 8 × slot):
 *
 *   block+0  ┐
 *   block+1  │ gateway: the TAP's address in the sandbox netns; also the sandbox resolver (DNS)
 *   block+2  │ the guest (eth0), default route via block+1
 *   block+3  ┘ (/30 broadcast)
 *   block+4  ┐
 *   block+5  │ veth, uplink end (kv…) in the uplink namespace
 *   block+6  │ veth, sandbox end (ku…) in the netns; its default route goes via block+5
 *   block+7  ┘
 *
 * The whole subnet is on every sandbox's always-deny list, so no sandbox reaches another or
 * the veth addresses. Slots are handed out by leases.ts.
 */
import { type Cidr, cidrSize, formatIpv4 } from './ipv4.js';
import { invalidArgument } from '../errors.js';

export const BLOCK_SIZE = 8;

export interface SandboxAddresses {
  /** Block in CIDR form, e.g. 10.210.0.8/29. */
  block: string;
  gateway: string;
  guest: string;
  /** Prefix length of the guest's link (gateway + guest). */
  guestPrefix: 30;
  uplinkVeth: string;
  sandboxVeth: string;
  vethPrefix: 30;
}

export function slotCount(subnet: Cidr): number {
  return Math.floor(cidrSize(subnet) / BLOCK_SIZE);
}

export function addressesFor(subnet: Cidr, slot: number): SandboxAddresses {
  if (subnet.prefix > 29) throw invalidArgument(`network subnet /${subnet.prefix} is too small (at most /29)`, { field: 'network.subnet' });
  if (!Number.isInteger(slot) || slot < 0 || slot >= slotCount(subnet)) throw new RangeError(`slot ${slot} outside the subnet`);
  const b = subnet.base + slot * BLOCK_SIZE;
  return {
    block: `${formatIpv4(b)}/29`,
    gateway: formatIpv4(b + 1),
    guest: formatIpv4(b + 2),
    guestPrefix: 30,
    uplinkVeth: formatIpv4(b + 5),
    sandboxVeth: formatIpv4(b + 6),
    vethPrefix: 30,
  };
}

/** The guest's MAC: locally administered unicast 02:6b ("k") + 4 bytes of the sandbox id. */
export function macFor(idHex: string): string {
  const tail = idHex.slice(-8).match(/../g) ?? [];
  return ['02', '6b', ...tail].join(':');
}
