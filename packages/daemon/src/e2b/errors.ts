/**
 * How a failed request leaves the E2B surface: E2B's `Error` schema, `{code: <HTTP status>,
 * message}` (the SDK checks `error.code === 404` to make `kill()` return false), plus the kiln
 * error code in `error_code` (a field E2B's schema allows). Messages are kiln's (a 500 names
 * only its request id, as on kiln's own API).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { toClientError } from '../api/error-handler.js';
import { KilnError } from '../errors.js';

export interface E2bErrorBody {
  code: number;
  message: string;
  error_code: string;
}

export function e2bErrorBody(err: unknown, requestId: string): E2bErrorBody {
  const e = toClientError(err, requestId);
  return { code: e.status, message: e.message, error_code: e.code };
}

/** A feature of the E2B API that kiln does not have: 501 naming it (never a silent success). */
export const unsupported = (feature: string): KilnError =>
  new KilnError('E2B_UNSUPPORTED', `kiln does not support ${feature} through the E2B API`, { status: 501, details: { feature } });

/** 404 in E2B's words for an id that names no sandbox the caller may see. */
export const e2bNotFound = (id: string): KilnError => new KilnError('SANDBOX_NOT_FOUND', `sandbox "${id}" not found`, { status: 404 });

/** E2B API families kiln does not serve, answered 501 naming them. */
const UNSUPPORTED_FAMILIES: Array<[RegExp, string]> = [
  [/^\/(?:v[23]\/)?templates(?:\/|$)/, 'the templates API (build templates with `kiln template`; E2B templateID names a kiln template)'],
  [/^\/volumes(?:\/|$)/, 'the volumes API'],
  [/^\/secrets(?:\/|$)/, 'the secrets API'],
  [/^\/(?:teams|api-keys|access-tokens|nodes)(?:\/|$)/, "E2B's account and cluster APIs (kiln keys: `kiln key create --e2b`)"],
];

export function installE2bErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const body = e2bErrorBody(err, req.id);
    if (body.code >= 500 && body.code !== 501) req.log.error({ err }, 'E2B request failed');
    const retry = err instanceof KilnError ? (err.details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds : undefined;
    if (typeof retry === 'number') void reply.header('retry-after', String(retry));
    void reply.status(body.code).send(body);
  });
  app.setNotFoundHandler((req: FastifyRequest, reply: FastifyReply) => {
    const path = req.url.split('?')[0] ?? '';
    const family = UNSUPPORTED_FAMILIES.find(([re]) => re.test(path));
    if (family) return void reply.status(501).send(e2bErrorBody(unsupported(family[1]), req.id));
    void reply.status(404).send({ code: 404, message: `kiln's E2B API has no route ${req.method} ${path}`, error_code: 'ROUTE_NOT_FOUND' });
  });
}
