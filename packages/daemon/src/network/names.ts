/**
 * Host resource names of a sandbox's network. Each carries the sandbox id's host key, its first
 * 12 hex digits (`sb-0123456789ab…`, sandbox/ids.ts), so whatever a crash leaves behind can be found and removed by name:
 *
 *   netns       kiln-0123456789ab   (host side of the sandbox: TAP, veth end, resolver, policy)
 *   TAP         kt0123456789ab      (in the netns; QEMU's virtio-net backend)
 *   veth        kv0123456789ab      (uplink end, in the uplink namespace)
 *               ku0123456789ab      (sandbox end, in the netns)
 *   nft tables  kiln_0123456789ab   (inet + netdev in the netns; inet in the uplink namespace)
 *
 * Interface names stay within IFNAMSIZ (15 characters).
 */
import { invalidArgument } from '../errors.js';
import { hostKey, isSandboxId } from '../sandbox/ids.js';

const HEX_RE = /^[0-9a-f]{12}$/;

export interface NetNames {
  idHex: string;
  netns: string;
  tap: string;
  vethUplink: string;
  vethSandbox: string;
  table: string;
}

/** The host key of a sandbox id (its first 12 hex digits, sandbox/ids.ts), or the key itself. */
export function idHexOf(sandboxId: string): string {
  const hex = sandboxId.startsWith('sb-') && isSandboxId(sandboxId) ? hostKey(sandboxId) : sandboxId;
  if (!HEX_RE.test(hex)) throw invalidArgument(`not a sandbox id: ${JSON.stringify(sandboxId)}`, { field: 'id' });
  return hex;
}

export function netNames(sandboxIdOrHex: string): NetNames {
  const h = idHexOf(sandboxIdOrHex);
  return { idHex: h, netns: `kiln-${h}`, tap: `kt${h}`, vethUplink: `kv${h}`, vethSandbox: `ku${h}`, table: `kiln_${h}` };
}

/** The id hex a resource name belongs to, or null when the name is not one of ours. */
export function idHexFromName(name: string): string | null {
  const m = /^(?:kiln-|kt|kv|ku|kiln_)([0-9a-f]{12})$/.exec(name);
  return m?.[1] ?? null;
}
