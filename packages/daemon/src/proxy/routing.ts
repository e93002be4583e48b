/**
 * Where a sandbox-proxy request goes (docs/ports.md): by host name `<port>-<id>.<domain>`, by
 * the headers Kiln-Sandbox-Id/-Port (or E2B's E2b-Sandbox-Id/-Port) on any host, or by path
 * `/sandboxes/<id>/ports/<port>/…` (the prefix is stripped). A sandbox id is kiln's `sb-<hex>`
 * or E2B's bare hex; the route always carries the kiln form.
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface ProxyRoute {
  sandboxId: string;
  port: number;
  /** The path (and query) to ask the guest for. */
  path: string;
  via: 'host' | 'header' | 'path';
}

const HEX = /^[0-9a-f]{8,64}$/;

/** The kiln id for an id in either form, or null when it is neither. */
export function normalizeSandboxId(s: string): string | null {
  const v = s.trim().toLowerCase();
  const hex = v.startsWith('sb-') ? v.slice(3) : v;
  return HEX.test(hex) ? `sb-${hex}` : null;
}

export function parsePort(s: string | undefined): number | null {
  if (s === undefined || !/^\d{1,5}$/.test(s.trim())) return null;
  const n = Number(s.trim());
  return n >= 1 && n <= 65535 ? n : null;
}

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** The host name without its port (IPv6 literals are never a route). */
export function hostName(host: string | undefined): string {
  if (!host || host.startsWith('[')) return '';
  return host.replace(/:\d+$/, '').toLowerCase().replace(/\.$/, '');
}

/**
 * The route of a request, or null when it names none. `domain` is the proxy domain
 * (e.g. "localhost" or "preview.example.com").
 */
export function parseRoute(req: { url?: string | undefined; headers: IncomingHttpHeaders }, domain: string): ProxyRoute | null {
  const url = req.url && req.url.startsWith('/') ? req.url : '/';
  const h = req.headers;
  const hid = first(h['kiln-sandbox-id']) ?? first(h['e2b-sandbox-id']);
  if (hid !== undefined) {
    const sandboxId = normalizeSandboxId(hid);
    const port = parsePort(first(h['kiln-sandbox-port']) ?? first(h['e2b-sandbox-port']));
    return sandboxId && port ? { sandboxId, port, path: url, via: 'header' } : null;
  }
  const name = hostName(first(h.host));
  const suffix = `.${domain.toLowerCase().replace(/\.$/, '')}`;
  if (name.endsWith(suffix)) {
    const label = name.slice(0, -suffix.length);
    const m = /^(\d{1,5})-([a-z0-9-]+)$/.exec(label);
    const sandboxId = m ? normalizeSandboxId(m[2] as string) : null;
    const port = m ? parsePort(m[1]) : null;
    if (sandboxId && port) return { sandboxId, port, path: url, via: 'host' };
  }
  const p = /^\/sandboxes\/([A-Za-z0-9-]+)\/ports\/(\d{1,5})(\/[^]*)?$|^\/sandboxes\/([A-Za-z0-9-]+)\/ports\/(\d{1,5})(\?[^]*)$/.exec(url);
  if (p) {
    const sandboxId = normalizeSandboxId((p[1] ?? p[4]) as string);
    const port = parsePort(p[2] ?? p[5]);
    const rest = p[3] ?? (p[6] !== undefined ? `/${p[6]}` : '/');
    if (sandboxId && port) return { sandboxId, port, path: rest, via: 'path' };
  }
  return null;
}

/** The URL of a port, host-name form, for `kiln url` and the ports API. */
export function portUrl(base: { scheme: 'http' | 'https'; domain: string; port: number | null }, sandboxId: string, port: number): string {
  const p = base.port === null || (base.scheme === 'http' && base.port === 80) || (base.scheme === 'https' && base.port === 443) ? '' : `:${base.port}`;
  return `${base.scheme}://${port}-${sandboxId}.${base.domain}${p}/`;
}
