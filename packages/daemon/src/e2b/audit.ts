/**
 * How the audit log reads E2B calls (audit/api-hook.ts does the recording, as for kiln's API):
 * the sandbox is the `{id}` path param (an E2B id, recorded as the kiln id) or, for a create,
 * the `sandboxID` of a 201 answer; the error code is the body's `error_code`.
 */
import type { FastifyRequest } from 'fastify';
import { kilnIdOf } from './ids.js';

const parse = (payload: unknown): Record<string, unknown> | null => {
  if (typeof payload !== 'string') return null;
  try {
    const v = JSON.parse(payload) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
};

export function e2bAuditSandbox(req: FastifyRequest, status: number, payload: unknown): string | undefined {
  const id = (req.params as { id?: unknown } | undefined)?.id;
  if (typeof id === 'string') return kilnIdOf(id) ?? undefined;
  if (req.method === 'POST' && status === 201) {
    const made = parse(payload)?.sandboxID;
    return typeof made === 'string' ? (kilnIdOf(made) ?? undefined) : undefined;
  }
  return undefined;
}

export function e2bAuditErrorCode(payload: unknown): string | undefined {
  const c = parse(payload)?.error_code;
  return typeof c === 'string' ? c : undefined;
}
