/**
 * Where sandboxes' traffic leaves the machine (config `network.uplink`):
 *   host        the host's own routing (its default route), masqueraded behind the host's
 *               address; kilnd turns on net.ipv4.ip_forward. What a production host uses.
 *   netns:NAME  a named network namespace that someone else made (tests: an "internet" of
 *               their own); routed, not masqueraded; nothing leaves that namespace unless it
 *               routes further itself.
 *   none        no uplink: the guest reaches its resolver (which has no upstream) and nothing else.
 */
import { invalidArgument } from '../errors.js';

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
