/**
 * API keys: `kiln_<id>_<secret>` where id is 16 hex digits (public: it names the key in lists
 * and audit records) and secret is 32 random bytes in base64url (256 bits). Only the SHA-256
 * of the whole key is stored; a presented key is compared with crypto.timingSafeEqual. Keys of
 * another shape (an E2B-style `e2b_` + 40 hex) are found by the hash of their full value.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const KEY_SCOPES = ['sandboxes', 'read-only'] as const;
export type KeyScope = (typeof KEY_SCOPES)[number];

const KILN_KEY_RE = /^kiln_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const E2B_KEY_RE = /^e2b_[0-9a-f]{40}$/;

export const newKeyId = (): string => randomBytes(8).toString('hex');

/** A new kiln key with the given id (its full value is shown once, to the operator). */
export const newKiln = (id: string): string => `kiln_${id}_${randomBytes(32).toString('base64url')}`;

/** A new E2B-shaped key (`e2b_` + 40 hex, 160 bits), for the E2B SDK's E2B_API_KEY (docs/e2b.md). */
export const newE2bKey = (): string => `e2b_${randomBytes(20).toString('hex')}`;

export const keyHash = (key: string): Buffer => createHash('sha256').update(key, 'utf8').digest();

export type ParsedKey = { kind: 'kiln'; id: string } | { kind: 'hashed' } | { kind: 'malformed' };

/** What a presented key looks like: a kiln key (with its id), another accepted shape, or neither. */
export function parseKey(key: string): ParsedKey {
  const m = KILN_KEY_RE.exec(key);
  if (m?.[1]) return { kind: 'kiln', id: m[1] };
  if (E2B_KEY_RE.test(key)) return { kind: 'hashed' };
  return { kind: 'malformed' };
}

/** Constant-time comparison of a presented key's hash with a stored one. */
export function hashMatches(key: string, stored: Buffer): boolean {
  const h = keyHash(key);
  return h.length === stored.length && timingSafeEqual(h, stored);
}

/** The bearer token of an Authorization header value, or null if it is not `Bearer <token>`. */
export function bearerToken(header: string | undefined): string | null | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
  return m?.[1] ?? null;
}
