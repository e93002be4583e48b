import { randomBytes } from 'node:crypto';

/** Sandbox ids: `sb-` + 12 hex digits. Host resources derive their names from the hex part. */
export const newSandboxId = (): string => `sb-${randomBytes(6).toString('hex')}`;
/** Ids this kilnd accepts: today's, and the 12-hex ones of state dirs an older kilnd made. */
export const SANDBOX_ID_PATTERN = '^sb-(?:[0-9a-f]{32}|[0-9a-f]{12})$';
export const SANDBOX_ID_RE = new RegExp(SANDBOX_ID_PATTERN);
export const isSandboxId = (s: string): boolean => SANDBOX_ID_RE.test(s);
