import type { FastifyInstance } from 'fastify';

export interface SystemInfo {
  version: string;
  driver: Record<string, unknown>;
  image: { hash: string; kernelVersion?: string } | null;
  stateDir: string;
  pool?: { size: number; ready: number; filling: number };
  /** Whether QEMU runs jailed (`insecure-no-jail` when the operator turned the jail off). */
  jail?: { mode: string; reason: string } | null;
}

export function registerSystemRoutes(app: FastifyInstance, info: () => SystemInfo): void {
  // Open on the TCP listener too (no key): for load balancers and liveness probes.
  app.get('/v1/health', { schema: { summary: 'Liveness (needs no API key)', security: [] } }, async () => ({ ok: true }));
  app.get('/v1/info', async () => info());
}
