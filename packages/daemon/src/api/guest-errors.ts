/** Maps errors raised by the guest agent onto KilnErrors with HTTP statuses. */
import { KilnError } from '../errors.js';

const STATUS: Record<string, number> = {
  NOT_FOUND: 404,
  PERMISSION_DENIED: 403,
  EXISTS: 409,
  IS_DIRECTORY: 400,
  NOT_DIRECTORY: 400,
  INVALID_ARGUMENT: 400,
  TIMEOUT: 504,
  CHANNEL_CLOSED: 503,
  CANCELLED: 409,
  NOT_RUNNING: 409,
  RESOURCE_EXHAUSTED: 429,
};

export function fromGuestError(err: unknown): KilnError {
  if (err instanceof KilnError) return err;
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  return new KilnError(`GUEST_${code}`, message, { status: STATUS[code] ?? 502, cause: err });
}

/** For ops on one background process: the agent's NOT_FOUND / NOT_RUNNING name the process. */
export function fromProcessError(err: unknown, pid: number): KilnError {
  const code = (err as { code?: unknown })?.code;
  if (code === 'NOT_FOUND') return new KilnError('PROCESS_NOT_FOUND', `no background process ${pid}`, { status: 404, cause: err });
  if (code === 'NOT_RUNNING') return new KilnError('PROCESS_NOT_RUNNING', err instanceof Error ? err.message : `process ${pid} is not running`, { status: 409, cause: err });
  return fromGuestError(err);
}
