/**
 * Maps errors raised by the guest agent onto KilnErrors: wire code X becomes GUEST_X with the
 * status the registry (error-codes.ts) gives it; a code the registry lacks becomes GUEST_INTERNAL.
 */
import { isErrorCode } from '../error-codes.js';
import { KilnError } from '../errors.js';

export function fromGuestError(err: unknown): KilnError {
  if (err instanceof KilnError) return err;
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  const kilnCode = `GUEST_${code}`;
  return isErrorCode(kilnCode) ? new KilnError(kilnCode, message, { cause: err }) : new KilnError('GUEST_INTERNAL', `${code}: ${message}`, { cause: err });
}
