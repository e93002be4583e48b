/**
 * Template visibility: a template made by the admin (built, or snapshotted over the unix
 * socket) is shared; one a tenant snapshotted is that tenant's. Another tenant's template
 * answers TEMPLATE_NOT_FOUND exactly like a missing one.
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

export async function assertTemplateVisible(req: FastifyRequest, templates: TemplateService | null, name: string): Promise<void> {
  const t = await templates?.store.byName(name);
  if (t && !templateVisible(req, t)) throw new KilnError('TEMPLATE_NOT_FOUND', `template ${name} not found`, { status: 404, details: { field: 'template' } });
}
