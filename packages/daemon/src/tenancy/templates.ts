/**
 * Template visibility and names. Names are per tenant: a tenant's own templates (built or
 * snapshotted with its key) are its namespace; templates the admin made (built, or
 * snapshotted over the unix socket) are shared, visible to all. A name resolves to the
 * tenant's own first, then a shared one. Another tenant's template answers
 * TEMPLATE_NOT_FOUND exactly like a missing one.
 */
import type { FastifyRequest } from 'fastify';
import { KilnError } from '../errors.js';
import type { TemplateManifest } from '../template/manifest.js';
import type { TemplateService } from '../template/service.js';
import { tenantOf } from './principal.js';

export function templateVisible(req: FastifyRequest, t: TemplateManifest): boolean {
  const tenant = tenantOf(req);
  return tenant === null || (t.tenant ?? null) === null || t.tenant === tenant;
}

export const templateNotFound = (name: string): KilnError => new KilnError('TEMPLATE_NOT_FOUND', `template ${name} not found`, { status: 404, details: { field: 'template' } });

/** Throws TEMPLATE_NOT_FOUND unless the name resolves for the caller (its own, then shared). */
export async function assertTemplateVisible(req: FastifyRequest, templates: TemplateService | null, name: string): Promise<void> {
  if (templates && !(await templates.store.resolve(name, tenantOf(req)))) throw templateNotFound(name);
}
