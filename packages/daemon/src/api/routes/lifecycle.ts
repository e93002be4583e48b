/**
 * Lifecycle routes: host-wide events (optionally followed as NDJSON), a sandbox's timeout,
 * and garbage collection on demand.
 *
 *   GET  /v1/events?sandbox=&after=&follow=   events of every sandbox (or one), oldest first
 *   PUT  /v1/sandboxes/:id/timeout            {timeoutMs}: the sandbox now expires timeoutMs from now (0 = never)
 *   POST /v1/gc                               removes orphans now; {removed: [...]}
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { SandboxManager } from '../../sandbox/manager.js';
import { ErrorBody, SandboxIdParams, SandboxView } from '@kiln/contract';
import { sandboxView } from '../views.js';
import { sandboxNotFound } from '../../errors.js';
import { canSee, visibleSandboxes } from '../../tenancy/principal.js';

const HostEventsQuery = Type.Object(
  {
    sandbox: Type.Optional(Type.String({ description: 'Only this sandbox. Default: all.' })),
    after: Type.Optional(Type.Integer({ minimum: 0, description: 'Only events with a larger seq. Default 0.' })),
    follow: Type.Optional(Type.Boolean({ description: 'Keep streaming new events as NDJSON. Default false.' })),
  },
  { additionalProperties: false },
);
const TimeoutBody = Type.Object(
  { timeoutMs: Type.Integer({ minimum: 0, maximum: 7 * 24 * 3600 * 1000, description: 'Remaining lifetime from now in ms; 0 = no timeout.' }) },
  { additionalProperties: false },
);

/** How often a follower looks for new events. */
const FOLLOW_POLL_MS = 250;

export function registerLifecycleRoutes(app: FastifyInstance, manager: SandboxManager, gc: () => Promise<string[]>): void {
  const followers = new Set<() => void>();
  // preClose: open follow streams would otherwise keep the server from closing.
  app.addHook('preClose', async () => {
    for (const stop of [...followers]) stop();
  });
  app.get<{ Querystring: Static<typeof HostEventsQuery> }>(
    '/v1/events',
    { schema: { summary: 'Lifecycle events of the host (all sandboxes) or one sandbox; follow streams NDJSON', querystring: HostEventsQuery, response: { '4xx': ErrorBody } } },
    async (req, reply) => {
      const { sandbox, follow } = req.query;
      if (sandbox !== undefined && !canSee(req, sandbox)) throw sandboxNotFound(sandbox);
      let after = req.query.after ?? 0;
      let mine = visibleSandboxes(req);
      const page = () => {
        // Events outlive their sandbox's row: filter the host's list rather than asking by id.
        const evs = manager.events(undefined, after);
        if (evs.length) after = evs[evs.length - 1]?.seq ?? after;
        if (mine && evs.some((e) => !mine?.has(e.sandboxId))) mine = visibleSandboxes(req); // a sandbox made since
        return evs.filter((e) => (sandbox === undefined || e.sandboxId === sandbox) && (mine === null || mine.has(e.sandboxId)));
      };
      if (!follow) return { events: page() };
      // Hijacked so the headers leave at once: a follower sees 200 before the first new event.
      reply.hijack();
      const out = reply.raw;
      out.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      out.flushHeaders();
      const push = () => {
        for (const e of page()) out.write(JSON.stringify(e) + '\n');
      };
      push();
      const timer = setInterval(push, FOLLOW_POLL_MS);
      timer.unref();
      const stop = () => {
        clearInterval(timer);
        followers.delete(stop);
        out.end();
      };
      followers.add(stop);
      req.raw.once('close', stop);
      return reply;
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
