/**
 * Signed proxy URLs: `?kiln_sig=<payload>.<mac>` where the payload names the sandbox, the
 * port (or every port) and the expiry, and the MAC is HMAC-SHA256 under a secret kilnd keeps
 * in its state directory (`proxy-secret`, 0600; deleting it revokes every signed URL). The
 * same token is then kept in a cookie scoped to the host (or the path prefix) it was used on,
 * so that the page's sub-resources load without the query parameter.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const SIG_PARAM = 'kiln_sig';
export const SIG_COOKIE = 'kiln_proxy_sig';

export interface SignedGrant {
  sandboxId: string;
  /** null: every port of the sandbox. */
  port: number | null;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

/** Reads the secret, creating it (32 random bytes) on first use. */
export function loadProxySecret(stateDir: string): Buffer {
  const path = join(stateDir, 'proxy-secret');
  try {
    const b = readFileSync(path);
    if (b.length >= 32) return b;
  } catch {
    // first start
  }
  const b = randomBytes(32);
  writeFileSync(path, b, { mode: 0o600 });
  return b;
}

const mac = (secret: Buffer, payload: string) => createHmac('sha256', secret).update(payload).digest('base64url');

export function signGrant(secret: Buffer, g: SignedGrant): string {
  const payload = Buffer.from(`${g.sandboxId}:${g.port ?? '*'}:${g.exp}`).toString('base64url');
  return `${payload}.${mac(secret, payload)}`;
}

export type VerifyResult = { ok: true; grant: SignedGrant } | { ok: false; reason: 'malformed' | 'bad-signature' | 'expired' | 'other-sandbox' | 'other-port' };

/** Checks a token for (sandboxId, port) at `nowSec`. */
export function verifyGrant(secret: Buffer, token: string, want: { sandboxId: string; port: number }, nowSec = Math.floor(Date.now() / 1000)): VerifyResult {
  const m = /^([A-Za-z0-9_-]{1,200})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return { ok: false, reason: 'malformed' };
  const [, payload, sig] = m as unknown as [string, string, string];
  const expected = Buffer.from(mac(secret, payload));
  if (!timingSafeEqual(expected, Buffer.from(sig))) return { ok: false, reason: 'bad-signature' };
  const parts = Buffer.from(payload, 'base64url').toString().split(':');
  if (parts.length !== 3) return { ok: false, reason: 'malformed' };
  const [sandboxId, p, e] = parts as [string, string, string];
  const grant: SignedGrant = { sandboxId, port: p === '*' ? null : Number(p), exp: Number(e) };
  if (!Number.isFinite(grant.exp) || grant.exp < nowSec) return { ok: false, reason: 'expired' };
  if (grant.sandboxId !== want.sandboxId) return { ok: false, reason: 'other-sandbox' };
  if (grant.port !== null && grant.port !== want.port) return { ok: false, reason: 'other-port' };
  return { ok: true, grant };
}

/** Removes `kiln_sig` from a path's query; returns the token (if any) and the cleaned path. */
export function takeSignature(path: string): { token: string | null; path: string } {
  const q = path.indexOf('?');
  if (q < 0) return { token: null, path };
  const params = new URLSearchParams(path.slice(q + 1));
  const token = params.get(SIG_PARAM);
  if (token === null) return { token: null, path };
  params.delete(SIG_PARAM);
  const rest = params.toString();
  return { token, path: path.slice(0, q) + (rest ? `?${rest}` : '') };
}

/** The token in the request's cookie header, if any. */
export function cookieToken(cookie: string | undefined): string | null {
  if (!cookie) return null;
  for (const part of cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === SIG_COOKIE) return v.join('=');
  }
  return null;
}

/** Strips kiln's own cookie before the request reaches the guest. */
export function withoutOwnCookie(cookie: string | undefined): string | undefined {
  if (!cookie) return cookie;
  const rest = cookie.split(';').map((s) => s.trim()).filter((s) => s && !s.startsWith(`${SIG_COOKIE}=`));
  return rest.length ? rest.join('; ') : undefined;
}
