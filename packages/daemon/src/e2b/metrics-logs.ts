/**
 * E2B metrics and logs, from kiln's resource sampler and guest log store:
 *   GET /sandboxes/{id}/metrics?start=&end= (unix s) → SandboxMetric[] (kiln keeps the latest
 *     sample only: one entry, or none if it falls outside [start, end] or none was taken yet)
 *   GET /sandboxes/metrics?sandbox_ids=a,b → {sandboxes: {id: SandboxMetric}}
 *   GET /sandboxes/{id}/logs?start=<ms>&limit= → {logs: [{timestamp, line}], logEntries: [...]}
 *   GET /v2/sandboxes/{id}/logs?cursor=<ms>&limit=&direction=forward|backward → {logs: [...]}
 * A log entry is {timestamp, level: 'info', message, fields: {service}}: the guest's console,
 * dockerd and agent lines as `kiln logs` shows them.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { LogLine } from '../logs/store.js';
import type { SandboxSample } from '../metrics/sampler.js';
import type { SandboxManager } from '../sandbox/manager.js';
import type { SandboxRecord } from '../sandbox/types.js';
import { canSee } from '../tenancy/principal.js';
import { findSandbox } from './lookup.js';
import { kilnIdOf, e2bIdOf } from './ids.js';
import type { E2bStore } from './store.js';

export interface E2bObservability {
  /** The latest resource sample of a sandbox, or null. */
  sample(id: string): SandboxSample | null;
  /** A sandbox's stored guest log lines, oldest first. */
  logs(id: string): LogLine[];
}

export function metricOf(r: SandboxRecord, s: SandboxSample) {
  const at = s.guest?.at ?? s.at;
  return {
    timestamp: new Date(at).toISOString(),
    timestampUnix: Math.floor(at / 1000),
    cpuCount: r.spec.vcpus,
    cpuUsedPct: s.vmm?.cpuPercent ?? 0,
    memUsed: s.guest?.memUsedBytes ?? s.vmm?.rssBytes ?? 0,
    memTotal: s.guest?.memTotalBytes ?? r.spec.memoryMiB * 1024 * 1024,
    memCache: 0,
    diskUsed: s.disk?.allocatedBytes ?? 0,
    diskTotal: s.disk?.sizeBytes ?? r.spec.diskGiB * 1024 ** 3,
  };
}

const entryOf = (l: LogLine) => ({ timestamp: l.time, level: 'info', message: l.text, fields: { service: l.service } });

const IdParams = Type.Object({ id: Type.String({ maxLength: 128 }) });
const MetricsQuery = Type.Object({ start: Type.Optional(Type.Integer({ minimum: 0 })), end: Type.Optional(Type.Integer({ minimum: 0 })) });
const ManyQuery = Type.Object({ sandbox_ids: Type.String({ maxLength: 100 * 40 }) });
const LogsV1Query = Type.Object({ start: Type.Optional(Type.Integer({ minimum: 0 })), limit: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })) });
const LogsV2Query = Type.Object({
  cursor: Type.Optional(Type.Integer({ minimum: 0 })),
  limit: Type.Optional(Type.Integer({ minimum: 0, maximum: 10_000 })),
  direction: Type.Optional(Type.Union([Type.Literal('forward'), Type.Literal('backward')])),
  level: Type.Optional(Type.String()),
  search: Type.Optional(Type.String()),
});

export function registerMetricsLogsRoutes(app: FastifyInstance, manager: SandboxManager, store: E2bStore, obs: E2bObservability): void {
  app.get<{ Querystring: Static<typeof ManyQuery> }>('/sandboxes/metrics', { schema: { querystring: ManyQuery } }, async (req) => {
    const out: Record<string, ReturnType<typeof metricOf>> = {};
    for (const e2bId of req.query.sandbox_ids.split(',').filter(Boolean)) {
      const id = kilnIdOf(e2bId);
      const rec = id && canSee(req, id) ? manager.list().find((r) => r.id === id) : undefined;
      const s = rec ? obs.sample(rec.id) : null;
      if (rec && s) out[e2bIdOf(rec.id)] = metricOf(rec, s);
    }
    return { sandboxes: out };
  });

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof MetricsQuery> }>('/sandboxes/:id/metrics', { schema: { params: IdParams, querystring: MetricsQuery } }, async (req) => {
    const { rec } = findSandbox(req, manager, store, req.params.id);
    const s = obs.sample(rec.id);
    if (!s) return [];
    const m = metricOf(rec, s);
    if (req.query.start !== undefined && m.timestampUnix < req.query.start) return [];
    if (req.query.end !== undefined && m.timestampUnix > req.query.end) return [];
    return [m];
  });

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof LogsV1Query> }>('/sandboxes/:id/logs', { schema: { params: IdParams, querystring: LogsV1Query } }, async (req) => {
    const { rec } = findSandbox(req, manager, store, req.params.id);
    const from = req.query.start ?? 0;
    const lines = obs.logs(rec.id).filter((l) => Date.parse(l.time) >= from).slice(0, req.query.limit ?? 1000);
    return { logs: lines.map((l) => ({ timestamp: l.time, line: `${l.service} ${l.text}` })), logEntries: lines.map(entryOf) };
  });

  app.get<{ Params: Static<typeof IdParams>; Querystring: Static<typeof LogsV2Query> }>('/v2/sandboxes/:id/logs', { schema: { params: IdParams, querystring: LogsV2Query } }, async (req) => {
    const { rec } = findSandbox(req, manager, store, req.params.id);
    const q = req.query;
    const limit = q.limit ?? 1000;
    let lines = obs.logs(rec.id);
    if (q.search) lines = lines.filter((l) => l.text.includes(q.search as string));
    if (q.direction === 'backward') {
      if (q.cursor !== undefined) lines = lines.filter((l) => Date.parse(l.time) <= (q.cursor as number));
      lines = lines.slice(-limit).reverse();
    } else {
      if (q.cursor !== undefined) lines = lines.filter((l) => Date.parse(l.time) >= (q.cursor as number));
      lines = lines.slice(0, limit);
    }
    return { logs: lines.map(entryOf) };
  });
}
