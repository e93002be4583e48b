/**
 * Errors: every failure kilnd reports arrives as a KilnError with the wire `code`, the HTTP
 * `status` and the `details` kilnd sent; each registered code has its own subclass
 * (error-classes.ts, generated from @kiln/contract's registry), so callers can write
 * `catch (e) { if (e instanceof SandboxNotFoundError) … }` or test `e.code`.
 */
export interface KilnErrorOptions {
  status?: number;
  details?: unknown;
  cause?: unknown;
}

export class KilnError extends Error {
  readonly code: string;
  /** The HTTP status (0 when kilnd was never reached). */
  readonly status: number;
  readonly details: unknown;

  constructor(code: string, message: string, opts: KilnErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'KilnError';
    this.code = code;
    this.status = opts.status ?? 0;
    this.details = opts.details;
  }
}

export type KilnErrorClass = new (message: string, opts?: KilnErrorOptions) => KilnError;

const byCode = new Map<string, KilnErrorClass>();

/** Registers the class for a wire code (error-classes.ts registers one per code of the registry). */
export function register(cls: KilnErrorClass & { readonly code: string }): void {
  byCode.set(cls.code, cls);
}

/** The class registered for a code (KilnError itself for a code this SDK does not know). */
export function errorClassFor(code: string): KilnErrorClass | undefined {
  return byCode.get(code);
}

export function knownErrorCodes(): string[] {
  return [...byCode.keys()];
}

/** Builds the error for a kilnd error response `{error:{code,message,details}}`. */
export function fromWire(status: number, text: string): KilnError {
  let code = `HTTP_${status}`;
  let message = text.slice(0, 300) || `HTTP ${status}`;
  let details: unknown;
  try {
    const j = JSON.parse(text) as { error?: { code?: string; message?: string; details?: unknown } };
    if (j.error?.code) {
      code = j.error.code;
      message = j.error.message ?? code;
      details = j.error.details;
    }
  } catch {
    // not JSON: keep the text
  }
  const cls = byCode.get(code);
  return cls ? new cls(message, { status, details }) : new KilnError(code, message, { status, details });
}
