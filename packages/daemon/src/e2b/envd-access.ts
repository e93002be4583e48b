/**
 * Who may use a sandbox's in-sandbox API (envd's rules, infra `packages/envd/internal/api/auth.go`):
 * `X-Access-Token` equal to the sandbox's envd access token; `GET /health` is open; `/files`
 * may instead carry a signature made from the token (`sandbox.downloadUrl()` / `uploadUrl()`):
 *   "v1_" + base64(sha256("<path>:<read|write>:<username or ''>:<token>[:<expUnix>]")), '=' stripped,
 * refused once `signature_expiration` (unix s) has passed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

const same = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

export function fileSignature(o: { path: string; operation: 'read' | 'write'; user: string; token: string; expiration: number | null }): string {
  const raw = `${o.path}:${o.operation}:${o.user}:${o.token}${o.expiration === null ? '' : `:${o.expiration}`}`;
  return `v1_${createHash('sha256').update(raw, 'utf8').digest('base64').replace(/=+$/, '')}`;
}

export type EnvdAccess = { ok: true } | { ok: false; message: string };

/** Whether a data-plane request may reach the sandbox whose token is `token`. */
export function envdAccess(method: string, url: string, headers: Record<string, string | string[] | undefined>, token: string, nowMs = Date.now()): EnvdAccess {
  const given = headers['x-access-token'];
  const header = Array.isArray(given) ? given[0] : given;
  if (header !== undefined) return same(header, token) ? { ok: true } : { ok: false, message: 'invalid access token' };
  const u = new URL(url, 'http://x');
  if (method === 'GET' && u.pathname === '/health') return { ok: true };
  const sig = u.searchParams.get('signature');
  if (u.pathname === '/files' && (method === 'GET' || method === 'POST') && sig !== null) {
    const expRaw = u.searchParams.get('signature_expiration');
    const expiration = expRaw === null ? null : Number(expRaw);
    if (expiration !== null && (!Number.isInteger(expiration) || expiration * 1000 < nowMs)) return { ok: false, message: 'the signature has expired' };
    const want = fileSignature({ path: u.searchParams.get('path') ?? '', operation: method === 'GET' ? 'read' : 'write', user: u.searchParams.get('username') ?? '', token, expiration });
    return same(sig, want) ? { ok: true } : { ok: false, message: 'invalid signature' };
  }
  return { ok: false, message: 'an access token is required: send X-Access-Token' };
}
