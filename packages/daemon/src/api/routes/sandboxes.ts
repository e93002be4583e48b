import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import type { SandboxManager } from '../../sandbox/manager.js';
import { CreateSandboxBody, CreateSandboxQuery, ErrorBody, EventsQuery, SandboxIdParams, SandboxView } from '../schemas.js';
import { sandboxView } from '../views.js';

type IdParams = Static<typeof SandboxIdParams>;

export function registerSandboxRoutes(app: FastifyInstance, manager: SandboxManager): void {
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
      const rec = await manager.create(req.body ?? {}, { wait });
      return reply.status(wait ? 201 : 202).send(sandboxView(rec));
    },
  );

  app.get('/v1/sandboxes', { schema: { summary: 'List sandboxes', response: { 200: Type.Object({ sandboxes: Type.Array(SandboxView) }) } } }, async () => ({
    sandboxes: manager.list().map(sandboxView),
  }));

  app.get<{ Params: IdParams }>(
    '/v1/sandboxes/:id',
    { schema: { summary: 'Inspect a sandbox', params: SandboxIdParams, response: { 200: SandboxView, '4xx': ErrorBody } } },
    async (req) => sandboxView(manager.get(req.params.id)),
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
      manager.get(req.params.id);
      return manager.eventLog.page({ sandboxId: req.params.id, afterSeq: req.query.after ?? 0, limit: req.query.limit ?? 1000 });
    },
  );
  // GET /v1/sandboxes/:id/logs: routes/logs.ts (guest logs kept by kilnd).
}
