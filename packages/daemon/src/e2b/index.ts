/**
 * kiln's E2B compatibility layer, wired into kilnd: the control-plane app (app.ts), the
 * front that takes E2B's requests on the TCP listener (dispatch.ts), and the store of what
 * E2B knows beyond kiln's rows (store.ts). The data plane registers its handler in
 * `front.portHandlers` (port 49983).
 */
import type Database from 'better-sqlite3';
import type { FastifyInstance } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { buildE2bApi, type E2bApiOptions } from './app.js';
import { E2bFront, ENVD_PORT } from './dispatch.js';
import { createEnvdHandler } from './envd/handler.js';
import type { AuditSink } from '../audit/guest-records.js';
import { E2bStore } from './store.js';
import { PauseOnTimeout } from './on-timeout.js';
import type { E2bContext } from './views.js';

export { E2bFront, ENVD_PORT, type DataPlaneHandler } from './dispatch.js';
export { ENVD_VERSION } from './envd-version.js';
export { E2bStore } from './store.js';

export interface E2bLayer {
  app: FastifyInstance;
  front: E2bFront;
  store: E2bStore;
  ctx: E2bContext;
  close(): Promise<void>;
}

/** `guestAudit`: kiln's audit log, for what the data plane does in the guest (process starts, file writes…). */
export async function mountE2b(db: Database.Database, o: Omit<E2bApiOptions, 'store' | 'ctx' | 'onTimeout'> & { domain: string | null; guestAudit?: AuditSink }): Promise<E2bLayer> {
  const store = new E2bStore(db);
  store.prune(new Set(o.manager.records().map((r) => r.id)));
  const ctx: E2bContext = { domain: o.domain };
  const onTimeout = new PauseOnTimeout(o.manager, store, o.logger);
  onTimeout.restore();
  const app = await buildE2bApi({ ...o, store, ctx, onTimeout });
  const route = app.routing.bind(app) as (req: IncomingMessage, res: unknown) => void;
  const front = new E2bFront(o.manager, store, route, (id) => onTimeout.resumeOnTraffic(id));
  // The in-sandbox API (envd) on port 49983; the sandbox proxy may register more ports.
  front.portHandlers.set(ENVD_PORT, createEnvdHandler(o.manager, o.logger, o.guestAudit));
  return {
    app,
    front,
    store,
    ctx,
    close: async () => {
      onTimeout.close();
      await app.close();
    },
  };
}

/**
 * The `domain` of E2B answers (`sandbox.getHost(port)` = `<port>-<id>.<domain>`): the
 * operator's (--e2b-domain / $KILN_E2B_DOMAIN), else `localhost:<listener port>` — names under
 * .localhost resolve to loopback and kiln's proxy routes `<port>-<hex id>.localhost` hosts.
 */
export function e2bDomain(configured: string | null, listener: { port: number } | null): string | null {
  if (configured) return configured;
  return listener ? `localhost:${listener.port}` : null;
}
