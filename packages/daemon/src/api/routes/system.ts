import type { FastifyInstance } from 'fastify';
import { principalOf } from '../../tenancy/principal.js';

export interface SystemInfo {
  version: string;
  driver: Record<string, unknown>;
  image: { hash: string; kernelVersion?: string } | null;
  stateDir: string;
  pool?: { size: number; ready: number; filling: number };
  /** Whether QEMU runs jailed (`insecure-no-jail` when the operator turned the jail off). */
  jail?: { mode: string; reason: string } | null;
  /** The sandbox proxy: its URL pattern ({port}, {sandboxId}) and listener; null without one (docs/ports.md). */
  proxy?: { url: string; listen: string } | null;
}

export function registerSystemRoutes(app: FastifyInstance, info: () => SystemInfo): void {
  // Open on the TCP listener too (no key): for load balancers and liveness probes.
  app.get('/v1/health', { schema: { summary: 'Liveness (needs no API key)', security: [] } }, async () => ({ ok: true }));
  // A tenant learns what its sandboxes run on, not the host's layout (state dir, binaries, pool).
  app.get('/v1/info', async (req) => (principalOf(req).kind === 'admin' ? info() : tenantInfo(info())));
}

/** /v1/info as a tenant key sees it: the version, the image and the accelerator, no host paths. */
export function tenantInfo(i: SystemInfo): Pick<SystemInfo, 'version' | 'image' | 'jail'> & { driver: { accel: unknown } } {
  // (No proxy here: a tenant gets its ports' URLs from the ports API.)
  return { version: i.version, image: i.image, driver: { accel: i.driver.accel }, jail: i.jail ? { mode: i.jail.mode, reason: '' } : null };
}
