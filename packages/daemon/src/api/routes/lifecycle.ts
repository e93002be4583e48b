/**
 * Lifecycle routes: host-wide events (optionally followed as NDJSON), a sandbox's timeout,
 * and garbage collection on demand.
 *
 *   GET  /v1/events?sandbox=&after=&limit=    a page of events of every sandbox (or one), oldest first, + nextAfter
 *   GET  /v1/events?follow=true&…             NDJSON: matching events, then new ones as they are added
 *   PUT  /v1/sandboxes/:id/timeout            {timeoutMs}: the sandbox now expires timeoutMs from now (0 = never)
 *   POST /v1/gc                               removes orphans now; {removed: [...]}
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { SandboxManager } from '../../sandbox/manager.js';
import type { EventLog } from '../../store/events.js';
import { bodyFrom, nextEvent, sendBody, type BodyStream } from '../body-stream.js';
import { ErrorBody, SandboxIdParams, SandboxView } from '@kiln/contract';
import { sandboxView } from '../views.js';
import { sandboxNotFound } from '../../errors.js';
import { canSee, tenantOf } from '../../tenancy/principal.js';

const HostEventsQuery = Type.Object(
  {
    sandbox: Type.Optional(Type.String({ description: 'Only this sandbox. Default: all.' })),
    after: Type.Optional(Type.Integer({ minimum: 0, description: 'Only events with a larger seq (a cursor: nextAfter of the previous page). Default 0.' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'Page size (without follow). Default 1000.' })),
    follow: Type.Optional(Type.Boolean({ description: 'Keep streaming new events as NDJSON. Default false.' })),
  },
  { additionalProperties: false },
);
const TimeoutBody = Type.Object(
  { timeoutMs: Type.Integer({ minimum: 0, maximum: 7 * 24 * 3600 * 1000, description: 'Remaining lifetime from now in ms; 0 = no timeout.' }) },
  { additionalProperties: false },
);

/**
 * Matching events after `after`, then new ones as they are added, as NDJSON lines. Read from
 * SQLite a page at a time and only as fast as the client takes them (bodyFrom); a follower
 * that caught up sleeps until the next insert.
 */
async function* followEvents(log: EventLog, q: { sandboxId?: string; tenant?: string; after: number }, signal: AbortSignal): AsyncGenerator<string> {
  let after = q.after;
  while (!signal.aborted) {
    const page = log.page({ ...(q.sandboxId === undefined ? {} : { sandboxId: q.sandboxId }), ...(q.tenant === undefined ? {} : { tenant: q.tenant }), afterSeq: after, limit: 1000 });
    // Checked and subscribed in one synchronous step: no insert falls between them.
    if (page.events.length === 0) {
      await nextEvent(log, 'added', signal);
      continue;
    }
    for (const e of page.events) yield JSON.stringify(e) + '\n';
    after = page.events.at(-1)?.seq ?? after;
  }
}

export function registerLifecycleRoutes(app: FastifyInstance, manager: SandboxManager, gc: () => Promise<string[]>): void {
  const followers = new Set<BodyStream>();
  // preClose: open follow streams would otherwise keep the server from closing.
  app.addHook('preClose', async () => {
    for (const body of [...followers]) body.end();
  });
  app.get<{ Querystring: Static<typeof HostEventsQuery> }>(
    '/v1/events',
    { schema: { summary: 'Lifecycle events of the host (all sandboxes) or one sandbox, paged; follow streams NDJSON', querystring: HostEventsQuery, response: { '4xx': ErrorBody } } },
    async (req, reply) => {
      const { sandbox, follow } = req.query;
      if (sandbox !== undefined && !canSee(req, sandbox)) throw sandboxNotFound(sandbox);
      // Events outlive their sandbox's row: a destroyed sandbox's events are still found by id.
      const tenant = tenantOf(req);
      const q = { ...(sandbox === undefined ? {} : { sandboxId: sandbox }), ...(tenant === null ? {} : { tenant }), after: req.query.after ?? 0 };
      if (!follow) return manager.eventLog.page({ ...q, afterSeq: q.after, limit: req.query.limit ?? 1000 });
      const body = bodyFrom((signal) => followEvents(manager.eventLog, q, signal));
      followers.add(body);
      body.once('close', () => followers.delete(body));
      return sendBody(reply, body, 'application/x-ndjson', { flushHeaders: true });
    },
  );

  app.put<{ Params: Static<typeof SandboxIdParams>; Body: Static<typeof TimeoutBody> }>(
    '/v1/sandboxes/:id/timeout',
    { schema: { summary: "Set a sandbox's remaining lifetime (extend or shorten its timeout)", params: SandboxIdParams, body: TimeoutBody, response: { 200: SandboxView, '4xx': ErrorBody } } },
    async (req) => sandboxView(manager.setTimeout(req.params.id, req.body.timeoutMs)),
  );

  app.post('/v1/gc', { schema: { summary: 'Collect garbage now: orphaned VMMs, run dirs, network state', response: { 200: Type.Object({ removed: Type.Array(Type.String()) }) } } }, async () => ({
    removed: await gc(),
  }));
}
