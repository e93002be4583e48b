/**
 * The audit log over the API:
 *   GET /v1/audit?sandbox=&since=&after=&limit=   a page of records (chain order) + nextAfter
 *   GET /v1/audit?follow=true&…                   NDJSON: matching records, then new ones as they become durable
 *   GET /v1/audit/verify                          walks the whole chain against the head kilnd holds
 * A follower reads the durable files a page at a time by seq cursor, only as fast as the
 * client takes the records (body-stream.ts), and sleeps until the next durable record once it
 * caught up: kilnd holds no backlog for a slow follower.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { invalidArgument } from '../../errors.js';
import type { AuditLog } from '../../audit/log.js';
import { queryAudit, type AuditQuery } from '../../audit/query.js';
import { verifyChain } from '../../audit/verify.js';
import { bodyFrom, nextEvent, sendBody } from '../body-stream.js';

const AuditQueryString = Type.Object(
  {
    sandbox: Type.Optional(Type.String({ pattern: '^sb-[0-9a-f]{12}$', description: 'Only records of this sandbox.' })),
    since: Type.Optional(Type.String({ minLength: 1, description: 'Only records at or after this time: ISO-8601 or ms since the epoch.' })),
    after: Type.Optional(Type.Integer({ minimum: 0, description: 'Only records with a greater seq (a cursor). Default 0.' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'Page size. Default 1000.' })),
    follow: Type.Optional(Type.Boolean({ description: 'Stream NDJSON, then keep streaming new records. Default false.' })),
  },
  { additionalProperties: false },
);

function parseSince(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const ms = /^\d+$/.test(s) ? Number(s) : Date.parse(s);
  if (!Number.isFinite(ms)) throw invalidArgument(`invalid since ${JSON.stringify(s)}: want ISO-8601 or ms since the epoch`, { field: 'since' });
  return ms;
}

/** Matching records after the cursor, then new ones as they become durable, as NDJSON lines. */
async function* followAudit(audit: AuditLog, q: AuditQuery, signal: AbortSignal): AsyncGenerator<string> {
  let cursor = q.afterSeq ?? 0;
  while (!signal.aborted) {
    const head = audit.head.seq;
    if (cursor >= head) {
      // Compared and subscribed in one synchronous step: no record falls between them.
      await nextEvent(audit, 'record', signal);
      continue;
    }
    const page = queryAudit(audit.dir, { ...q, afterSeq: cursor, untilSeq: head, limit: 1000 });
    for (const r of page.records) yield JSON.stringify(r) + '\n';
    // A page that ran out of matches examined every record up to head.
    cursor = page.nextAfter ?? head;
  }
}

export function registerAuditRoutes(app: FastifyInstance, audit: AuditLog): void {
  app.get<{ Querystring: Static<typeof AuditQueryString> }>(
    '/v1/audit',
    { schema: { summary: 'Audit records (hash-chained); follow=true streams NDJSON', querystring: AuditQueryString } },
    async (req, reply) => {
      const q: AuditQuery = {
        ...(req.query.sandbox ? { sandboxId: req.query.sandbox } : {}),
        ...(req.query.since !== undefined ? { sinceMs: parseSince(req.query.since) } : {}),
        afterSeq: req.query.after ?? 0,
        limit: req.query.limit ?? 1000,
      };
      if (!req.query.follow) return { ...queryAudit(audit.dir, { ...q, untilSeq: audit.head.seq }), head: audit.head };

      return sendBody(reply, bodyFrom((signal) => followAudit(audit, q, signal)), 'application/x-ndjson', { flushHeaders: true });
    },
  );

  app.get('/v1/audit/verify', { schema: { summary: 'Verify the audit hash chain; names the first broken record' } }, async () => {
    const head = audit.head;
    return { ...verifyChain(audit.dir, { expectHead: head, allowTornTail: true }), dir: audit.dir, expectedHead: head };
  });
}
