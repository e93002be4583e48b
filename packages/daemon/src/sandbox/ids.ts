import { randomBytes } from 'node:crypto';

/** Sandbox ids: `sb-` + 12 hex digits. Host resources derive their names from the hex part. */
export const newSandboxId = (): string => `sb-${randomBytes(6).toString('hex')}`;
export const SANDBOX_ID_RE = /^sb-[0-9a-f]{12}$/;
export const isSandboxId = (s: string): boolean => SANDBOX_ID_RE.test(s);
