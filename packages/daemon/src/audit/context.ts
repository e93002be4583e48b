/**
 * The API request being served, carried through async calls (AsyncLocalStorage): audit
 * records and log lines made while serving a request get its id and caller without every
 * function passing them along.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { AuditActor } from './record.js';

export interface RequestContext {
  requestId: string;
  actor: AuditActor;
}

export const requestContext = new AsyncLocalStorage<RequestContext>();

export const currentRequest = (): RequestContext | undefined => requestContext.getStore();

/** pino `mixin`: binds every log line made while serving a request to its requestId. */
export const requestLogMixin = (): Record<string, string> => {
  const c = requestContext.getStore();
  return c ? { requestId: c.requestId } : {};
};
