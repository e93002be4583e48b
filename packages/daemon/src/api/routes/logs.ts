/**
 * Guest logs: GET /v1/sandboxes/:id/logs?service=&tail=&follow= → text/plain, one line per
 * log line: `<ISO time> <service> <text>`. Served from kilnd's store, so it works while the
 * sandbox runs and after it is destroyed (until retention removes the logs). With follow,
 * new lines stream until the sandbox's logs close (it is destroyed) or the client leaves.
 */
import type { FastifyInstance } from 'fastify';
import { PassThrough } from 'node:stream';
import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import { sandboxNotFound } from '../../errors.js';
import type { GuestLogs } from '../../logs/guest-logs.js';
import { formatLine, LOG_SERVICES, type LogLine } from '../../logs/store.js';
import type { SandboxManager } from '../../sandbox/manager.js';
import { SandboxIdParams } from '@kiln/contract';

const LogsQuery = Type.Object(
  {
    service: Type.Optional(Type.Union(LOG_SERVICES.map((s) => Type.Literal(s)), { description: 'Only this service: console, dockerd or agent. Default all.' })),
    tail: Type.Optional(Type.Integer({ minimum: 0, description: 'Only the last N stored lines. Default all.' })),
    follow: Type.Optional(Type.Boolean({ description: 'Keep streaming new lines. Default false.' })),
  },
  { additionalProperties: false },
);

export function registerLogRoutes(app: FastifyInstance, manager: SandboxManager, logs: GuestLogs): void {
  app.get<{ Params: Static<typeof SandboxIdParams>; Querystring: Static<typeof LogsQuery> }>(
    '/v1/sandboxes/:id/logs',
    { schema: { summary: 'Guest logs (console, dockerd, agent), also after the sandbox is destroyed', params: SandboxIdParams, querystring: LogsQuery } },
    async (req, reply) => {
      const id = req.params.id;
      let exists = true;
      try {
        manager.get(id);
      } catch {
        exists = false;
      }
      if (!exists && !logs.has(id)) throw sandboxNotFound(id);
      const want = (l: LogLine) => req.query.service === undefined || l.service === req.query.service;
      if (exists && req.query.follow && !logs.isLive(id)) logs.open(id);
      // read() is synchronous and follow() subscribes in the same tick: no line is lost or doubled.
      let lines = logs.read(id).filter(want);
      if (req.query.tail !== undefined) lines = req.query.tail === 0 ? [] : lines.slice(-req.query.tail);
      const out = new PassThrough();
      for (const l of lines) out.write(formatLine(l));
      if (!req.query.follow || !logs.isLive(id)) {
        out.end();
      } else {
        const stop = logs.follow(id, (l) => want(l) && out.write(formatLine(l)), () => out.end());
        req.raw.once('close', () => {
          stop();
          out.end();
        });
      }
      return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-store').send(out);
    },
  );
}
