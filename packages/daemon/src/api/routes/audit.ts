/**
 * The audit log over the API:
 *   GET /v1/audit?sandbox=&since=&after=&limit=   a page of records (chain order) + nextAfter
 *   GET /v1/audit?follow=true&…                   NDJSON: matching records, then new ones as they become durable
 *   GET /v1/audit/verify                          walks the whole chain against the head kilnd holds
 * A follower reads the durable files a page at a time by seq cursor, only as fast as the
 * client takes the records (body-stream.ts), and sleeps until the next durable record once it
 * caught up: kilnd holds no backlog for a slow follower.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { invalidArgument, sandboxNotFound } from '../../errors.js';
import type { AuditRecord } from '../../audit/record.js';
import type { AuditLog } from '../../audit/log.js';
import { queryAudit, type AuditQuery } from '../../audit/query.js';
import { verifyChain } from '../../audit/verify.js';
import { bodyFrom, nextEvent, sendBody } from '../body-stream.js';
import { SANDBOX_ID_PATTERN } from '../../sandbox/ids.js';
import { canSee, tenantOf, visibleSandboxes } from '../../tenancy/principal.js';

/**
 * What a tenant may read: records of its own sandboxes, and its own calls that name no
 * sandbox. (A call on another tenant's or a missing sandbox is filed under that id: unseen.)
 */
function visibility(req: FastifyRequest): ((r: AuditRecord) => boolean) | undefined {
  const tenant = tenantOf(req);
  if (tenant === null) return undefined;
  let mine = visibleSandboxes(req) ?? new Set<string>();
  return (r) => {
    if (r.sandboxId === undefined) return r.actor.kind === 'key' && r.actor.tenant === tenant;
    if (!mine.has(r.sandboxId)) mine = visibleSandboxes(req) ?? mine; // made since
    return mine.has(r.sandboxId);
  };
}

const AuditQueryString = Type.Object(
  {
    sandbox: Type.Optional(Type.String({ pattern: SANDBOX_ID_PATTERN, description: 'Only records of this sandbox.' })),
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
      if (req.query.sandbox && !canSee(req, req.query.sandbox)) throw sandboxNotFound(req.query.sandbox);
      const visible = visibility(req);
      const q: AuditQuery = {
        ...(visible ? { filter: visible } : {}),
        ...(req.query.sandbox ? { sandboxId: req.query.sandbox } : {}),
        ...(req.query.since !== undefined ? { sinceMs: parseSince(req.query.since) } : {}),
        afterSeq: req.query.after ?? 0,
        limit: req.query.limit ?? 1000,
      };
      // The chain head tells how busy the whole host is: the admin's to know.
      if (!req.query.follow) return { ...queryAudit(audit.dir, { ...q, untilSeq: audit.head.seq }), ...(visible ? {} : { head: audit.head }) };

      return sendBody(reply, bodyFrom((signal) => followAudit(audit, q, signal)), 'application/x-ndjson', { flushHeaders: true });
    },
  );

  app.get('/v1/audit/verify', { schema: { summary: 'Verify the audit hash chain; names the first broken record' } }, async () => {
    const head = audit.head;
    return { ...verifyChain(audit.dir, { expectHead: head, allowTornTail: true }), dir: audit.dir, expectedHead: head };
  });
}
