/**
 * Where sandboxes' traffic leaves the machine (config `network.uplink`):
 *   host        the host's own routing (its default route), masqueraded behind the host's
 *               address; kilnd turns on net.ipv4.ip_forward. What a production host uses.
 *   netns:NAME  a named network namespace that someone else made (tests: an "internet" of
 *               their own); routed, not masqueraded; nothing leaves that namespace unless it
 *               routes further itself.
 *   none        no uplink: the guest reaches its resolver (which has no upstream) and nothing else.
 */
import { invalidArgument, KilnError } from '../errors.js';
import { hostCmd } from './host-cmd.js';

export type Uplink = { kind: 'host' } | { kind: 'netns'; name: string } | { kind: 'none' };

const NETNS_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export function parseUplink(s: string): Uplink {
  if (s === 'host' || s === 'none') return { kind: s };
  if (s.startsWith('netns:')) {
    const name = s.slice('netns:'.length);
    if (NETNS_RE.test(name) && !/^kiln-[0-9a-f]{12}$/.test(name)) return { kind: 'netns', name };
  }
  throw invalidArgument(`network uplink must be host, none or netns:NAME (got ${JSON.stringify(s)})`, { field: 'network.uplink' });
}

export function formatUplink(u: Uplink): string {
  return u.kind === 'netns' ? `netns:${u.name}` : u.kind;
}

/** The namespace the uplink veth end lives in: null = the root namespace, undefined = no uplink. */
export function uplinkNetns(u: Uplink): string | null | undefined {
  return u.kind === 'host' ? null : u.kind === 'netns' ? u.name : undefined;
}

/** Checks the host's network tools and the uplink; turns on forwarding for the host uplink. */
export async function checkHostTools(uplink: Uplink): Promise<void> {
  for (const [tool, arg] of [['ip', '-V'], ['nft', '--version'], ['dnsmasq', '--version'], ['sysctl', '--version'], ['flock', '--version']] as const) {
    await hostCmd(tool, [arg]).catch((err: unknown) => {
      throw new KilnError('NETWORK_UNAVAILABLE', `${tool} is missing or broken (scripts/setup.sh installs it): ${(err as Error).message}`, { cause: err });
    });
  }
  if (uplink.kind === 'netns') {
    const list = await hostCmd('ip', ['netns', 'list']);
    if (!list.split('\n').some((l) => l.split(' ')[0] === uplink.name)) {
      throw new KilnError('NETWORK_UNAVAILABLE', `uplink network namespace ${uplink.name} does not exist`, { details: { field: 'network.uplink' } });
    }
  }
  if (uplink.kind === 'host') await hostCmd('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
}
