/**
 * How every failed request leaves kilnd: `{error:{code,message,details?}}` with a code from the
 * registry (error-codes.ts). Schema validation failures name the field; fastify's own errors
 * (body too large, wrong media type, malformed JSON) get kiln codes; a 500 never echoes what
 * kilnd ran on the host (command lines, paths, tool output): its message is the code's meaning
 * and the request id, and the detail goes to kilnd's log under that id.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, type ErrorCode } from '@kiln/contract';
import { KilnError } from '../errors.js';

type FrameworkError = FastifyError & {
  validation?: Array<{ instancePath?: string; message?: string; params?: Record<string, unknown> }>;
  validationContext?: string;
};

/** fastify's client-error codes (FST_ERR_CTP_*) → kiln's. */
const FRAMEWORK_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'INVALID_CONTENT_LENGTH',
};

function validationError(e: FrameworkError): KilnError {
  const v = e.validation?.[0];
  const extra = v?.params?.additionalProperty;
  const where = e.validationContext ?? 'request';
  const field = extra ? String(extra) : (v?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.') || e.validationContext || 'request';
  const message = extra ? `unknown field ${JSON.stringify(extra)} in ${where}` : `invalid ${where} field ${field}: ${v?.message ?? 'invalid'}`;
  return new KilnError('INVALID_ARGUMENT', message, { details: { field } });
}

/** What the client sees of an error; `requestId` names the log lines of a 500. */
export function toClientError(err: unknown, requestId: string): KilnError {
  const e = err as FrameworkError;
  if (e?.validation) return validationError(e);
  if (err instanceof KilnError) {
    if (err.status !== 500) return err;
    const meaning = Object.hasOwn(ERROR_CODES, err.code) ? ERROR_CODES[err.code as ErrorCode].meaning : ERROR_CODES.INTERNAL.meaning;
    return new KilnError(err.code, `${meaning} (request ${requestId}; the detail is in kilnd's log)`);
  }
  const status = typeof e?.statusCode === 'number' ? e.statusCode : 500;
  if (status < 500) {
    const code = FRAMEWORK_CODES[e.code] ?? 'BAD_REQUEST';
    return new KilnError(code, code === 'BAD_REQUEST' ? e.message : ERROR_CODES[code].meaning, { status });
  }
  return new KilnError('INTERNAL', `internal error (request ${requestId}; the detail is in kilnd's log)`);
}

export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const client = toClientError(err, req.id);
    if (client.status >= 500) req.log.error({ err }, 'request failed');
    // A refusal that knows when to come back (tenant limits: 429) says so.
    const retry = (client.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
    if (typeof retry === 'number') void reply.header('retry-after', String(retry));
    void reply.status(client.status).send({ error: client.toJSON() });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'ROUTE_NOT_FOUND', message: `no route ${req.method} ${req.url}` } });
  });
}
