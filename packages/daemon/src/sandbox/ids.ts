/**
 * Sandbox ids: `sb-` + 32 lowercase hex digits (128 random bits: an id is not guessable).
 * Host resources (netns, links, nft tables, run-dir markers) are named by the id's *host key*,
 * its first 12 hex digits (interface names are limited to 15 characters); a new id whose host
 * key a known sandbox already has is drawn again, so host keys are unique among them. Ids of
 * an older kilnd (`sb-` + 12 hex) are still accepted: their host key is their whole hex part.
 */
import { randomBytes } from 'node:crypto';

export const SANDBOX_ID_PATTERN = '^sb-(?:[0-9a-f]{32}|[0-9a-f]{12})$';
export const SANDBOX_ID_RE = new RegExp(SANDBOX_ID_PATTERN);
export const isSandboxId = (s: string): boolean => SANDBOX_ID_RE.test(s);

/** The 12 hex digits host resources of this sandbox are named by. */
export function hostKey(sandboxId: string): string {
  const hex = sandboxId.startsWith('sb-') ? sandboxId.slice(3, 15) : sandboxId.slice(0, 12);
  return hex;
}

/** A new id whose host key `taken` (host keys of known sandboxes) does not hold. */
export function newSandboxId(taken: (hostKey: string) => boolean = () => false): string {
  for (;;) {
    const id = `sb-${randomBytes(16).toString('hex')}`;
    if (!taken(hostKey(id))) return id;
  }
}
