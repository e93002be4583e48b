/** IPv4 address arithmetic (addresses as unsigned 32-bit numbers) and CIDR parsing. */
import { invalidArgument } from '../errors.js';

const OCTETS_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export interface Cidr {
  /** Network address (host bits cleared). */
  base: number;
  prefix: number;
}

export function parseIpv4(s: string): number | null {
  const m = OCTETS_RE.exec(s);
  if (!m) return null;
  let n = 0;
  for (const part of m.slice(1)) {
    const o = Number(part);
    if (o > 255 || (part.length > 1 && part.startsWith('0'))) return null;
    n = n * 256 + o;
  }
  return n;
}

export function formatIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parses `a.b.c.d/len` (or a bare address as /32); null when malformed or host bits are set. */
export function parseCidr(s: string, opts: { strict?: boolean } = {}): Cidr | null {
  const [addr, len, ...rest] = s.split('/');
  if (rest.length || addr === undefined) return null;
  const ip = parseIpv4(addr);
  const prefix = len === undefined ? 32 : /^\d{1,2}$/.test(len) ? Number(len) : NaN;
  if (ip === null || !(prefix >= 0 && prefix <= 32)) return null;
  const base = (ip & mask(prefix)) >>> 0;
  if (opts.strict !== false && base !== ip) return null;
  return { base, prefix };
}

/** Like parseCidr, but throws INVALID_ARGUMENT naming `field`. */
export function requireCidr(s: string, field: string): Cidr {
  const c = parseCidr(s);
  if (!c) throw invalidArgument(`${field}: ${JSON.stringify(s)} is not an IPv4 CIDR (a.b.c.d/len, host bits clear)`, { field });
  return c;
}

export function formatCidr(c: Cidr): string {
  return `${formatIpv4(c.base)}/${c.prefix}`;
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return ((ip & mask(c.prefix)) >>> 0) === c.base;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & mask(p)) >>> 0) === ((b.base & mask(p)) >>> 0);
}
