/**
 * Coded errors (in the manner of fastify's FST_ERR_*): every error that crosses a boundary
 * (HTTP, CLI, SDK) is a KilnError with a stable `code` from the registry (@kiln/contract's error-codes.ts) and an
 * HTTP status, by default the registry's.
 */
import { ERROR_CODES, isErrorCode } from '@kiln/contract';

export interface KilnErrorOptions {
  /** Default: the code's status in the registry (500 for a code it lacks). */
  status?: number;
  cause?: unknown;
  details?: unknown;
}

export class KilnError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: unknown;

  constructor(code: string, message: string, opts: KilnErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'KilnError';
    this.code = code;
    this.status = opts.status ?? (isErrorCode(code) ? ERROR_CODES[code].status : 500);
    this.details = opts.details;
  }

  toJSON(): { code: string; message: string; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

export const invalidArgument = (message: string, details?: unknown): KilnError =>
  new KilnError('INVALID_ARGUMENT', message, { status: 400, details });

export const sandboxNotFound = (id: string): KilnError =>
  new KilnError('SANDBOX_NOT_FOUND', `sandbox ${id} not found`, { status: 404 });

export const invalidState = (id: string, state: string, action: string): KilnError =>
  new KilnError('INVALID_STATE', `sandbox ${id} is ${state}; cannot ${action}`, { status: 409 });

export const unsupportedOperation = (driver: string, op: string): KilnError =>
  new KilnError('UNSUPPORTED_OPERATION', `the ${driver} driver does not support ${op}`, { status: 501 });

/** Wraps anything thrown into a KilnError, keeping KilnErrors as they are. */
export function toKilnError(err: unknown, code = 'INTERNAL'): KilnError {
  if (err instanceof KilnError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new KilnError(code, message, { status: 500, cause: err });
}
