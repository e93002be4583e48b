/**
 * The E2B-compatible control plane: its own fastify app (E2B's paths, `X-API-KEY` auth, E2B's
 * `{code, message}` errors), served on kiln's TCP listener through E2bFront (dispatch.ts).
 * A separate app keeps kiln's API untouched: its Bearer auth, `{error:{…}}` bodies and strict
 * schemas stay as they are. docs/e2b.md lists what the SDK can do through it.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { SandboxManager } from '../sandbox/manager.js';
import type { TenantAdmission } from '../tenancy/limits.js';
import type { TenantStore } from '../tenancy/tenant-store.js';
import type { TemplateService } from '../template/service.js';
import { e2bActor, registerE2bEnforce, registerE2bIdentify } from './auth.js';
import { e2bAuditErrorCode, e2bAuditSandbox } from './audit.js';
import type { ApiObservability } from '../observability.js';
import { registerCreateRoutes } from './create.js';
import { installE2bErrorHandlers, unsupported } from './errors.js';
import { registerLifecycleRoutes } from './lifecycle-routes.js';
import { registerListRoutes } from './list.js';
import { registerMetricsLogsRoutes, type E2bObservability } from './metrics-logs.js';
import type { E2bStore } from './store.js';
import type { PauseOnTimeout } from './on-timeout.js';
import type { E2bContext } from './views.js';

export interface E2bApiOptions {
  manager: SandboxManager;
  tenants: TenantStore;
  admission: TenantAdmission | null;
  templates: TemplateService | null;
  store: E2bStore;
  obs: E2bObservability;
  logger: Logger;
  /** Read on each answer (the domain may be known only once the listener is bound). */
  ctx: E2bContext;
  /** Pause-on-timeout timers (lifecycle.onTimeout 'pause'). */
  onTimeout: PauseOnTimeout;
  /** kiln's audit hooks (every E2B call gets an `api` record, as kiln's API calls do); absent in some unit tests. */
  audit?: ApiObservability['registerHooks'];
}

/** Routes of the SDK that kiln does not have, each answered 501 naming the feature. */
const UNSUPPORTED: Array<[string, string, string]> = [
  ['PUT', '/sandboxes/:id/network', 'updateNetwork (use kiln network policy: PATCH /v1/sandboxes/{id}/network/policy)'],
  ['POST', '/sandboxes/:id/fork', 'fork'],
  ['POST', '/sandboxes/:id/snapshots', 'createSnapshot (use kiln snapshots: POST /v1/sandboxes/{id}/snapshot)'],
  ['GET', '/snapshots', 'listSnapshots'],
];

export async function buildE2bApi(o: E2bApiOptions): Promise<FastifyInstance> {
  const app = Fastify({ loggerInstance: o.logger.child({ component: 'e2b' }) as FastifyBaseLogger, bodyLimit: 1024 * 1024, genReqId: () => `e2b-${randomBytes(6).toString('hex')}` });
  // An empty JSON body is {} (some SDK calls send none).
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body);
    if (text.trim() === '') return done(null, {});
    try {
      done(null, JSON.parse(text) as unknown);
    } catch (err) {
      (err as { statusCode?: number }).statusCode = 400;
      done(err as Error, undefined);
    }
  });
  installE2bErrorHandlers(app);
  // Who is calling, the audit record of the call, then what they may do (as tenancy/auth.ts).
  registerE2bIdentify(app, o.tenants);
  o.audit?.(app, e2bActor, { sandboxOf: e2bAuditSandbox, errorCodeOf: e2bAuditErrorCode });
  registerE2bEnforce(app);
  app.get('/health', async () => ({ message: 'Health check successful' }));
  registerCreateRoutes(app, { manager: o.manager, admission: o.admission, templates: o.templates, store: o.store, ctx: o.ctx, onTimeout: o.onTimeout });
  registerListRoutes(app, o.manager, o.store);
  registerMetricsLogsRoutes(app, o.manager, o.store, o.obs);
  registerLifecycleRoutes(app, o.manager, o.store, o.ctx, o.onTimeout);
  for (const [method, url, feature] of UNSUPPORTED) {
    app.route({ method: method as 'GET', url, handler: async () => { throw unsupported(feature); } });
  }
  await app.ready();
  return app;
}
