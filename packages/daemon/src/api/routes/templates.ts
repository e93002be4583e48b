/** Templates (snapshots new sandboxes restore from), pause/resume, and snapshot (fork) of a sandbox. */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { KilnError } from '../../errors.js';
import type { SandboxManager } from '../../sandbox/manager.js';
import { SPEC_LIMITS } from '../../sandbox/spec.js';
import { captureSandbox } from '../../template/capture.js';
import type { TemplateManifest } from '../../template/manifest.js';
import type { TemplateService } from '../../template/service.js';
import { SandboxIdParams } from '@kiln/contract';
import { sandboxView } from '../views.js';
import { tenantOf } from '../../tenancy/principal.js';
import { templateVisible } from '../../tenancy/templates.js';

const NAME = { minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' };
const CreateTemplateBody = Type.Object(
  {
    name: Type.String({ ...NAME, description: 'Template name.' }),
    memoryMiB: Type.Optional(Type.Integer({ minimum: 256, maximum: 65536, description: 'Default 1024.' })),
    vcpus: Type.Optional(Type.Integer({ minimum: 1, maximum: 16, description: 'Default 2.' })),
    diskGiB: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024, description: 'Default 10.' })),
  },
  { additionalProperties: false },
);
const SnapshotBody = Type.Object({ name: Type.String({ ...NAME, description: 'Name of the new template.' }) }, { additionalProperties: false });
const NameParams = Type.Object({ name: Type.String() });

export const templateView = (t: TemplateManifest) => ({
  name: t.name,
  key: t.key,
  source: t.source,
  parentSandbox: t.parentSandbox,
  tenant: t.tenant ?? null,
  imageHash: t.imageHash,
  memoryMiB: t.memoryMiB,
  vcpus: t.vcpus,
  diskGiB: t.diskGiB,
  accel: t.accel,
  sharedMemory: t.sharedMemory,
  stateBytes: t.stateBytes,
  buildMs: t.buildMs,
  createdAt: t.createdAt,
});

export function registerTemplateRoutes(app: FastifyInstance, manager: SandboxManager, templates: TemplateService): void {
  app.get('/v1/templates', { schema: { summary: 'List templates' } }, async (req) => ({
    templates: (await templates.store.list()).filter((t) => templateVisible(req, t)).map(templateView),
  }));

  app.post<{ Body: Static<typeof CreateTemplateBody> }>(
    '/v1/templates',
    { schema: { summary: 'Boot a VM of this shape, wait for dockerd, snapshot it as a template', body: CreateTemplateBody } },
    async (req, reply) => {
      const image = await manager.image();
      const shape = {
        memoryMiB: req.body.memoryMiB ?? SPEC_LIMITS.memoryMiB.default,
        vcpus: req.body.vcpus ?? SPEC_LIMITS.vcpus.default,
        diskGiB: req.body.diskGiB ?? SPEC_LIMITS.diskGiB.default,
      };
      const other = await templates.store.byName(req.body.name);
      if (other && other.key !== templates.keyFor(shape, image)) {
        throw new KilnError('TEMPLATE_EXISTS', `a different template is already named ${req.body.name}`, { status: 409, details: { field: 'name' } });
      }
      const t = await templates.build(shape, image, { name: req.body.name });
      return reply.status(201).send(templateView(t));
    },
  );

  app.delete<{ Params: Static<typeof NameParams> }>('/v1/templates/:name', { schema: { summary: 'Remove a template', params: NameParams } }, async (req, reply) => {
    const t = await templates.store.byName(req.params.name);
    // A tenant removes only its own templates; shared and other tenants' ones are not found.
    const tenant = tenantOf(req);
    if (!t || (tenant !== null && t.tenant !== tenant)) throw new KilnError('TEMPLATE_NOT_FOUND', `template ${req.params.name} not found`, { status: 404 });
    await templates.store.remove(t.key);
    return reply.status(204).send();
  });

  app.post<{ Params: Static<typeof SandboxIdParams> }>('/v1/sandboxes/:id/pause', { schema: { summary: 'Pause a sandbox', params: SandboxIdParams } }, async (req) =>
    sandboxView(await manager.pause(req.params.id)),
  );
  app.post<{ Params: Static<typeof SandboxIdParams> }>('/v1/sandboxes/:id/resume', { schema: { summary: 'Resume a paused sandbox', params: SandboxIdParams } }, async (req) =>
    sandboxView(await manager.resume(req.params.id)),
  );

  app.post<{ Params: Static<typeof SandboxIdParams>; Body: Static<typeof SnapshotBody> }>(
    '/v1/sandboxes/:id/snapshot',
    { schema: { summary: 'Snapshot a sandbox as a template new sandboxes can start from (fork)', params: SandboxIdParams, body: SnapshotBody } },
    async (req, reply) => {
      if (await templates.store.byName(req.body.name)) {
        throw new KilnError('TEMPLATE_EXISTS', `a template is already named ${req.body.name}`, { status: 409, details: { field: 'name' } });
      }
      const t = await manager.withSnapshotable(req.params.id, (rec) =>
        captureSandbox({
          driver: manager.driver,
          store: templates.store,
          vm: rec.vm,
          shape: { memoryMiB: rec.spec.memoryMiB, vcpus: rec.spec.vcpus, diskGiB: rec.spec.diskGiB },
          imageHash: rec.imageHash ?? '',
          vmmVersion: manager.driver.capabilities().version,
          tcgTbSizeMiB: templates.tcgTbSizeMiB,
          scratch: manager.scratchOf(rec.id),
          name: req.body.name,
          parentSandbox: rec.id,
          tenant: tenantOf(req),
          resume: rec.state === 'running',
        }),
      );
      return reply.status(201).send(templateView(t));
    },
  );
}
