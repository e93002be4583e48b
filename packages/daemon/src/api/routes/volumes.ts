/**
 * Persistent volumes (docs/volumes.md). Every name is in the caller's namespace: a tenant's
 * key sees and changes its own volumes only; the admin (unix socket) its own, and with
 * `?all=true` lists every tenant's.
 *   POST   /v1/volumes {name, sizeBytes}  → 201 the volume
 *   GET    /v1/volumes[?all=true]          → {volumes, usedBytes, quotaBytes} (the caller's use and limit: maxVolumeGiB)
 *   GET    /v1/volumes/:name               → the volume (attachedTo: who holds it, how)
 *   DELETE /v1/volumes/:name               → 204 (409 VOLUME_IN_USE while attached)
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { tenantOf } from '../../tenancy/principal.js';
import { VOLUME_SIZE, type VolumeService } from '../../volume/service.js';

const NAME = { minLength: 1, maxLength: 63, pattern: '^[a-z0-9][a-z0-9._-]*$', description: 'Volume name: lowercase letters, digits, . _ -' };
const CreateVolumeBody = Type.Object(
  {
    name: Type.String(NAME),
    sizeBytes: Type.Integer({ minimum: VOLUME_SIZE.min, maximum: VOLUME_SIZE.max, description: 'Size of its filesystem (a sparse file: only what is written takes disk space).' }),
  },
  { additionalProperties: false },
);
const NameParams = Type.Object({ name: Type.String(NAME) });
const ListQuery = Type.Object({ all: Type.Optional(Type.Boolean({ description: "The admin's only: every tenant's volumes." })) }, { additionalProperties: false });

export function registerVolumeRoutes(app: FastifyInstance, volumes: VolumeService): void {
  app.post<{ Body: Static<typeof CreateVolumeBody> }>(
    '/v1/volumes',
    { schema: { summary: 'Create a persistent volume (an empty ext4 filesystem)', body: CreateVolumeBody } },
    async (req, reply) => reply.status(201).send(await volumes.create(tenantOf(req), req.body.name, req.body.sizeBytes)),
  );

  app.get<{ Querystring: Static<typeof ListQuery> }>('/v1/volumes', { schema: { summary: 'List volumes', querystring: ListQuery } }, async (req) => {
    const tenant = tenantOf(req);
    return { volumes: volumes.list(tenant, req.query.all === true), ...volumes.usage(tenant) };
  });

  app.get<{ Params: Static<typeof NameParams> }>('/v1/volumes/:name', { schema: { summary: 'Inspect a volume', params: NameParams } }, async (req) =>
    volumes.get(tenantOf(req), req.params.name),
  );

  app.delete<{ Params: Static<typeof NameParams> }>('/v1/volumes/:name', { schema: { summary: 'Remove a volume (refused while attached)', params: NameParams } }, async (req, reply) => {
    volumes.remove(tenantOf(req), req.params.name);
    return reply.status(204).send();
  });
}
