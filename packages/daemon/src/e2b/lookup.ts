/**
 * Finding the sandbox an E2B request names: its id (32 hex, or a kiln id), owned by the
 * caller's tenant, still alive. Everything else — a malformed id, another tenant's sandbox, a
 * destroyed one — is the same 404 in E2B's shape, so ids cannot be probed across tenants.
 */
import type { FastifyRequest } from 'fastify';
import type { SandboxManager } from '../sandbox/manager.js';
import type { SandboxRecord } from '../sandbox/types.js';
import { canSee } from '../tenancy/principal.js';
import { e2bNotFound } from './errors.js';
import { kilnIdOf } from './ids.js';
import type { E2bRow, E2bStore } from './store.js';
import { BASE_TEMPLATE } from './views.js';

export interface Found {
  rec: SandboxRecord;
  row: E2bRow;
}

const GONE = new Set(['stopping', 'stopped', 'destroyed']);

/**
 * `failed` (E2B has no such state: the sandbox is dead) is found only by a kill, which
 * reclaims it; every other call gets the 404 of a gone sandbox.
 */
export function findSandbox(req: FastifyRequest, manager: SandboxManager, store: E2bStore, e2bId: string, o: { kill?: boolean } = {}): Found {
  const id = kilnIdOf(e2bId);
  if (!id || !canSee(req, id)) throw e2bNotFound(e2bId);
  const rec = manager.list().find((r) => r.id === id);
  if (!rec || GONE.has(rec.state) || (rec.state === 'failed' && !o.kill)) throw e2bNotFound(e2bId);
  return { rec, row: store.ensure(id, rec.spec.template ?? BASE_TEMPLATE) };
}
