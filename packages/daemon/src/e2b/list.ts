/**
 * E2B lists:
 *   GET /v2/sandboxes?state=running,paused&metadata=<k=v&…>&template=&startedAfter=&order=&limit=&nextToken=
 *     → 200 ListedSandbox[]; the cursor of the next page is the `X-Next-Token` header (absent on
 *     the last page). No state = running and paused. limit 1..100, default 100. order by
 *     start time, `desc` (default) or `asc`.
 *   GET /sandboxes?metadata=  → the running ones, one page (SDK ≤2.x's old list).
 * The metadata filter arrives as one URL-encoded query string (the SDK encodes each key and
 * value, joins them with & and openapi-fetch encodes the whole again): it is parsed as a query
 * string and every pair must match exactly. Only the caller's tenant's sandboxes are listed.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { invalidArgument } from '../errors.js';
import type { SandboxManager } from '../sandbox/manager.js';
import type { SandboxRecord } from '../sandbox/types.js';
import { visibleSandboxes } from '../tenancy/principal.js';
import type { E2bRow, E2bStore } from './store.js';
import { BASE_TEMPLATE, e2bState, listedBody, type E2bState } from './views.js';

export interface ListItem {
  rec: SandboxRecord;
  row: E2bRow;
}

export interface ListQuery {
  states: E2bState[];
  metadata: Record<string, string>;
  template?: string;
  startedAfterMs?: number;
  order: 'asc' | 'desc';
  limit: number;
  nextToken?: string;
}

const unescape = (s: string): string => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/**
 * Parses the `metadata` filter: a query string whose keys and values the SDK URL-encoded
 * before URLSearchParams encoded them again, so each is decoded once more after parsing.
 */
export function parseMetadataFilter(s: string | undefined): Record<string, string> {
  if (!s) return {};
  return Object.fromEntries([...new URLSearchParams(s)].map(([k, v]) => [unescape(k), unescape(v)]));
}

const startOf = (r: SandboxRecord): number => r.readyAt ?? r.createdAt;
const cursorOf = (r: SandboxRecord): string => Buffer.from(`${startOf(r)}.${r.id}`).toString('base64url');
function parseCursor(t: string): { at: number; id: string } {
  const m = /^(\d+)\.(sb-[0-9a-f]{32})$/.exec(Buffer.from(t, 'base64url').toString());
  if (!m) throw invalidArgument('nextToken is not a token this server gave', { field: 'nextToken' });
  return { at: Number(m[1]), id: m[2] as string };
}

/** One page of a filtered, ordered list, and the token of the next page (null at the end). */
export function listPage(items: ListItem[], q: ListQuery): { page: ListItem[]; nextToken: string | null } {
  const sign = q.order === 'asc' ? 1 : -1;
  const cmp = (a: { at: number; id: string }, b: { at: number; id: string }): number => sign * (a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const key = (i: ListItem) => ({ at: startOf(i.rec), id: i.rec.id });
  const after = q.nextToken ? parseCursor(q.nextToken) : null;
  const matching = items
    .filter((i) => {
      const s = e2bState(i.rec);
      if (!s || !q.states.includes(s)) return false;
      if (q.template !== undefined && i.row.templateId !== q.template) return false;
      if (q.startedAfterMs !== undefined && startOf(i.rec) <= q.startedAfterMs) return false;
      if (after && cmp(key(i), after) <= 0) return false;
      return Object.entries(q.metadata).every(([k, v]) => i.row.metadata[k] === v);
    })
    .sort((a, b) => cmp(key(a), key(b)));
  const page = matching.slice(0, q.limit);
  const last = page[page.length - 1];
  return { page, nextToken: matching.length > q.limit && last ? cursorOf(last.rec) : null };
}

const ListV2Query = Type.Object({
  /** Comma-separated (the SDK serialises arrays as form, explode false). */
  state: Type.Optional(Type.String({ pattern: '^(running|paused)(,(running|paused))*$' })),
  metadata: Type.Optional(Type.String()),
  template: Type.Optional(Type.String()),
  startedAfter: Type.Optional(Type.String({ format: 'date-time' })),
  order: Type.Optional(Type.Union([Type.Literal('asc'), Type.Literal('desc')])),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  nextToken: Type.Optional(Type.String({ maxLength: 256 })),
});
const ListV1Query = Type.Object({ metadata: Type.Optional(Type.String()) });

export function registerListRoutes(app: FastifyInstance, manager: SandboxManager, store: E2bStore): void {
  const items = (req: Parameters<typeof visibleSandboxes>[0]): ListItem[] => {
    const mine = visibleSandboxes(req) ?? new Set<string>();
    return manager.list().flatMap((rec) => (mine.has(rec.id) ? [{ rec, row: store.ensure(rec.id, rec.spec.template ?? BASE_TEMPLATE) }] : []));
  };

  app.get<{ Querystring: Static<typeof ListV2Query> }>('/v2/sandboxes', { schema: { querystring: ListV2Query } }, async (req, reply) => {
    const q = req.query;
    const { page, nextToken } = listPage(items(req), {
      states: q.state ? (q.state.split(',') as E2bState[]) : ['running', 'paused'],
      metadata: parseMetadataFilter(q.metadata),
      ...(q.template ? { template: q.template } : {}),
      ...(q.startedAfter ? { startedAfterMs: Date.parse(q.startedAfter) } : {}),
      order: q.order ?? 'desc',
      limit: q.limit ?? 100,
      ...(q.nextToken ? { nextToken: q.nextToken } : {}),
    });
    if (nextToken) void reply.header('x-next-token', nextToken);
    return page.map((i) => listedBody(i.rec, i.row));
  });

  app.get<{ Querystring: Static<typeof ListV1Query> }>('/sandboxes', { schema: { querystring: ListV1Query } }, async (req) => {
    const { page } = listPage(items(req), { states: ['running'], metadata: parseMetadataFilter(req.query.metadata), order: 'desc', limit: Number.MAX_SAFE_INTEGER });
    return page.map((i) => listedBody(i.rec, i.row));
  });
}
