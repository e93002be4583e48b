/**
 * GET /v1/doctor: `kilnd doctor`'s checks of this host, as the running kilnd sees it (admin
 * only: they describe the host). Each check is read-only; the whole run takes well under a
 * second (a few `--version`s and /proc reads).
 */
import type { FastifyInstance } from 'fastify';
import type { DoctorOptions } from '../../doctor/checks.js';

export function registerDoctorRoutes(app: FastifyInstance, options: () => DoctorOptions): void {
  app.get('/v1/doctor', { schema: { summary: "The host's checks (kilnd doctor): accelerator, QEMU, jail, nftables, disk, image, templates (admin only)" } }, async () => {
    const { runDoctor } = await import('../../doctor/checks.js');
    const checks = await runDoctor(options());
    return { ok: checks.every((c) => c.status !== 'fail'), checks };
  });
}
