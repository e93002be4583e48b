/**
 * Maps errors raised by the guest agent onto KilnErrors: wire code X becomes GUEST_X with the
 * status the registry (@kiln/contract's error-codes.ts) gives it; a code the registry lacks becomes GUEST_INTERNAL.
 */
import { isErrorCode } from '@kiln/contract';
import { KilnError } from '../errors.js';

export function fromGuestError(err: unknown): KilnError {
  if (err instanceof KilnError) return err;
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  const kilnCode = `GUEST_${code}`;
  return isErrorCode(kilnCode) ? new KilnError(kilnCode, message, { cause: err }) : new KilnError('GUEST_INTERNAL', `${code}: ${message}`, { cause: err });
}

/** For ops on one background process: the agent's NOT_FOUND / NOT_RUNNING name the process. */
export function fromProcessError(err: unknown, pid: number): KilnError {
  const code = (err as { code?: unknown })?.code;
  if (code === 'NOT_FOUND') return new KilnError('PROCESS_NOT_FOUND', `no background process ${pid}`, { status: 404, cause: err });
  if (code === 'NOT_RUNNING') return new KilnError('PROCESS_NOT_RUNNING', err instanceof Error ? err.message : `process ${pid} is not running`, { status: 409, cause: err });
  return fromGuestError(err);
}
