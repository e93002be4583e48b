/** The agent's errors as Connect errors (the codes the SDK maps onto its own error classes). */
import { ConnectError, type ConnectCode } from './connect-codec.js';

const BY_AGENT_CODE: Record<string, ConnectCode> = {
  NOT_FOUND: 'not_found',
  PERMISSION_DENIED: 'permission_denied',
  EXISTS: 'already_exists',
  IS_DIRECTORY: 'invalid_argument',
  NOT_DIRECTORY: 'invalid_argument',
  INVALID_ARGUMENT: 'invalid_argument',
  TIMEOUT: 'deadline_exceeded',
  CANCELLED: 'canceled',
  RESOURCE_EXHAUSTED: 'resource_exhausted',
  NOT_RUNNING: 'failed_precondition',
  CHANNEL_CLOSED: 'unavailable',
};

/** kiln's own errors (KilnError: sandbox not found, not running, agent unavailable). */
const BY_KILN_STATUS: Record<number, ConnectCode> = { 400: 'invalid_argument', 404: 'not_found', 409: 'failed_precondition', 503: 'unavailable' };

export function guestError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const code = (err as { code?: unknown })?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof code === 'string' && BY_AGENT_CODE[code]) return new ConnectError(BY_AGENT_CODE[code], message, { cause: err });
  const status = (err as { status?: unknown })?.status;
  if (typeof status === 'number' && BY_KILN_STATUS[status]) return new ConnectError(BY_KILN_STATUS[status], message, { cause: err });
  return new ConnectError('internal', message, { cause: err });
}

/** For calls on one process: the agent's NOT_FOUND names the process (the SDK's kill() returns false on it). */
export function procError(err: unknown, pid: number): ConnectError {
  const code = (err as { code?: unknown })?.code;
  if (code === 'NOT_FOUND') return new ConnectError('not_found', `process with pid ${pid} not found`, { cause: err });
  return guestError(err);
}
