/**
 * Monitoring: GET /metrics (Prometheus text format), GET /v1/stats (the latest resource
 * sample of every sandbox), GET /v1/sandboxes/:id/stats and …/stats/history (the last 15 minutes).
 */
import type { FastifyInstance } from 'fastify';
import { visibleSandboxes } from '../../tenancy/principal.js';
import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import { KilnError } from '../../errors.js';
import type { KilnMetrics } from '../../metrics/registry.js';
import type { ResourceSampler } from '../../metrics/sampler.js';
import type { SandboxManager } from '../../sandbox/manager.js';
import { SandboxIdParams } from '@kiln/contract';

const HistoryQuery = Type.Object(
  { after: Type.Optional(Type.Integer({ minimum: 0, description: 'Only points newer than this (ms since the epoch): the `at` of the last point already held. Default 0.' })) },
  { additionalProperties: false },
);
const StatsQuery = Type.Object(
  { fresh: Type.Optional(Type.Boolean({ description: 'Sample now, asking every guest (also idle ones), instead of returning the latest periodic sample. Default false.' })) },
  { additionalProperties: false },
);

export function registerMetricsRoutes(app: FastifyInstance, manager: SandboxManager, metrics: KilnMetrics, sampler: ResourceSampler): void {
  app.get('/metrics', { schema: { summary: 'Prometheus metrics (text format)', hide: true } }, async (_req, reply) => {
    const { contentType, body } = await metrics.text();
    return reply.type(contentType).send(body);
  });

  app.get<{ Querystring: Static<typeof StatsQuery> }>('/v1/stats', { schema: { summary: 'Resource use of every sandbox (latest sample)', querystring: StatsQuery } }, async (req) => {
    if (req.query.fresh) await sampler.sampleAll({ fresh: true });
    const mine = visibleSandboxes(req);
    const ids = new Set(manager.list().flatMap((r) => (mine === null || mine.has(r.id) ? [r.id] : [])));
    return { intervalMs: sampler.intervalMs, sandboxes: sampler.all().filter((s) => ids.has(s.id)) };
  });

  app.get<{ Params: Static<typeof SandboxIdParams>; Querystring: Static<typeof StatsQuery> }>(
    '/v1/sandboxes/:id/stats',
    { schema: { summary: 'Resource use of one sandbox (latest sample)', params: SandboxIdParams, querystring: StatsQuery } },
    async (req) => {
      manager.get(req.params.id);
      if (req.query.fresh) await sampler.sampleAll({ fresh: true });
      const s = sampler.get(req.params.id);
      if (!s) throw new KilnError('NO_SAMPLE', `sandbox ${req.params.id} has no resource sample yet (it has no VM, or the first sample is pending)`, { status: 404 });
      return s;
    },
  );

  app.get<{ Params: Static<typeof SandboxIdParams>; Querystring: Static<typeof HistoryQuery> }>(
    '/v1/sandboxes/:id/stats/history',
    { schema: { summary: 'Resource samples of one sandbox over the last 15 minutes (oldest first), for graphs', params: SandboxIdParams, querystring: HistoryQuery } },
    async (req) => {
      manager.get(req.params.id);
      return { intervalMs: sampler.intervalMs, windowMs: sampler.history.windowMs, points: sampler.history.get(req.params.id, req.query.after ?? 0) };
    },
  );
}
