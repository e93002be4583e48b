import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { SandboxRecord } from '../../sandbox/types.js';
import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import type { SandboxManager } from '../../sandbox/manager.js';
import { CreateSandboxBody, CreateSandboxQuery, ErrorBody, EventsQuery, SandboxIdParams, SandboxView } from '@kiln/contract';
import { sandboxView } from '../views.js';
import type { TenantAdmission } from '../../tenancy/limits.js';
import type { TemplateService } from '../../template/service.js';
import { tenancyOf, tenantOf, visibleSandboxes } from '../../tenancy/principal.js';
import { assertTemplateVisible } from '../../tenancy/templates.js';

type IdParams = Static<typeof SandboxIdParams>;

/** A sandbox's view with its owning tenant (null: the admin's); a tenant is not shown the VMM's host pid. */
const ownedView = (req: FastifyRequest, r: SandboxRecord) => {
  const v = { ...sandboxView(r), tenant: tenancyOf(req)?.ownerOf(r.id) ?? null };
  return tenantOf(req) === null || !v.vm ? v : { ...v, vm: { ...v.vm, pid: 0 } };
};

export function registerSandboxRoutes(
  app: FastifyInstance,
  manager: SandboxManager,
  admission: TenantAdmission | null = null,
  templates: TemplateService | null = null,
  accessToken: ((id: string) => string) | null = null,
): void {
  // The proxy access token goes to the sandbox's owner on create and inspect, never in lists.
  const withToken = (req: FastifyRequest, r: SandboxRecord) => {
    const v = ownedView(req, r);
    return accessToken && r.state !== 'destroyed' ? { ...v, accessToken: accessToken(r.id) } : v;
  };
  app.post<{ Body: CreateSandboxBody; Querystring: Static<typeof CreateSandboxQuery> }>(
    '/v1/sandboxes',
    {
      schema: {
        summary: 'Create a sandbox (a microVM with a private Docker daemon)',
        body: CreateSandboxBody,
        querystring: CreateSandboxQuery,
        response: { 201: SandboxView, 202: SandboxView, '4xx': ErrorBody, '5xx': ErrorBody },
      },
    },
    async (req, reply) => {
      const wait = req.query.wait !== false;
      const tenant = tenantOf(req);
      const store = tenancyOf(req);
      if (tenant !== null && req.body?.template !== undefined) await assertTemplateVisible(req, templates, req.body.template);
      const owner =
        tenant !== null && store
          ? { own: (id: string) => store.setOwner(id, tenant), ...(admission ? { admit: (spec: Parameters<TenantAdmission['admit']>[1]) => admission.admit(tenant, spec) } : {}) }
          : {};
      const rec = await manager.create(req.body ?? {}, { wait, tenant, ...owner });
      return reply.status(wait ? 201 : 202).send(withToken(req, rec));
    },
  );

  app.get('/v1/sandboxes', { schema: { summary: 'List sandboxes', response: { 200: Type.Object({ sandboxes: Type.Array(SandboxView) }) } } }, async (req) => {
    const mine = visibleSandboxes(req);
    return { sandboxes: manager.list().filter((r) => mine === null || mine.has(r.id)).map((r) => ownedView(req, r)) };
  });

  app.get<{ Params: IdParams }>(
    '/v1/sandboxes/:id',
    { schema: { summary: 'Inspect a sandbox', params: SandboxIdParams, response: { 200: SandboxView, '4xx': ErrorBody } } },
    async (req) => withToken(req, manager.get(req.params.id)),
  );

  app.delete<{ Params: IdParams }>(
    '/v1/sandboxes/:id',
    { schema: { summary: 'Destroy a sandbox and everything it owns', params: SandboxIdParams, response: { 204: Type.Null(), '4xx': ErrorBody } } },
    async (req, reply) => {
      await manager.destroy(req.params.id);
      return reply.status(204).send();
    },
  );

  app.get<{ Params: IdParams; Querystring: Static<typeof EventsQuery> }>(
    '/v1/sandboxes/:id/events',
    { schema: { summary: 'Lifecycle events of a sandbox, a page at a time (nextAfter: the cursor of the next page, null at the end)', params: SandboxIdParams, querystring: EventsQuery } },
    async (req) => {
      manager.get(req.params.id); // and ownership: tenancy/auth.ts
      return manager.eventLog.page({ sandboxId: req.params.id, afterSeq: req.query.after ?? 0, limit: req.query.limit ?? 1000 });
    },
  );
  // GET /v1/sandboxes/:id/logs: routes/logs.ts (guest logs kept by kilnd).
}
