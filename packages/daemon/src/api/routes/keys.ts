/**
 * API keys and tenants (the admin's: tenants get 403 ADMIN_ONLY on TCP, see tenancy/route-policy.ts):
 *   POST   /v1/keys {tenant, name?, scopes?, e2b?} → 201 {key, …}: the key's full value, shown this once
 *                                               (e2b: an `e2b_<40 hex>` key, the shape E2B's SDK expects)
 *   GET    /v1/keys?tenant=                    → {keys}: ids, tenants, scopes; never a key or its hash
 *   DELETE /v1/keys/:id                        → 200 the revoked key (revoking twice is a no-op)
 *   GET    /v1/tenants                         → {tenants: [{name, limits, usage}]}
 *   GET    /v1/tenants/:name, PUT /v1/tenants/:name {maxSandboxes?, maxMemoryMiB?, maxVcpus?, createsPerMinute?, maxVolumeGiB?}
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { KEY_SCOPES, newE2bKey } from '../../tenancy/keys.js';
import type { TenantAdmission } from '../../tenancy/limits.js';
import type { TenantStore } from '../../tenancy/tenant-store.js';
import type { VolumeService } from '../../volume/service.js';

const TENANT = { minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9._-]*$', description: 'Tenant name: lowercase letters, digits, . _ -' };
const CreateKeyBody = Type.Object(
  {
    tenant: Type.String(TENANT),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'A label for the key.' })),
    scopes: Type.Optional(Type.Array(Type.Union(KEY_SCOPES.map((s) => Type.Literal(s))), { maxItems: 4, description: 'sandboxes (default: everything on its own sandboxes) or read-only.' })),
    e2b: Type.Optional(Type.Boolean({ description: 'Make an E2B-shaped key (e2b_ + 40 hex) for the E2B SDK (docs/e2b.md). Default false: a kiln_ key.' })),
  },
  { additionalProperties: false },
);
const KeyParams = Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{16}$' }) });
const KeysQuery = Type.Object({ tenant: Type.Optional(Type.String(TENANT)) }, { additionalProperties: false });
const TenantParams = Type.Object({ name: Type.String(TENANT) });
const LimitsBody = Type.Object(
  {
    maxSandboxes: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
    maxMemoryMiB: Type.Optional(Type.Integer({ minimum: 0, maximum: 1 << 30 })),
    maxVcpus: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
    createsPerMinute: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
    maxVolumeGiB: Type.Optional(Type.Integer({ minimum: 0, maximum: 1 << 20, description: "Its volumes' sizes together, GiB (default KILN_VOLUME_QUOTA_GIB, 100); lowering it below the use refuses new volumes and removes none." })),
  },
  { additionalProperties: false },
);

export function registerKeyRoutes(app: FastifyInstance, store: TenantStore, admission: TenantAdmission, volumes: VolumeService | null = null): void {
  app.post<{ Body: Static<typeof CreateKeyBody> }>('/v1/keys', { schema: { summary: 'Create an API key for a tenant (admin only); the key is in this response only', body: CreateKeyBody } }, async (req, reply) => {
    const o = { tenant: req.body.tenant, name: req.body.name ?? null, ...(req.body.scopes ? { scopes: req.body.scopes } : {}) };
    if (req.body.e2b) {
      const key = newE2bKey();
      return reply.status(201).send({ ...store.importKey(key, o), key });
    }
    const { key, info } = store.createKey(o);
    return reply.status(201).send({ ...info, key });
  });
  app.get<{ Querystring: Static<typeof KeysQuery> }>('/v1/keys', { schema: { summary: 'List API keys (admin only)', querystring: KeysQuery } }, async (req) => ({ keys: store.keys(req.query.tenant) }));
  app.delete<{ Params: Static<typeof KeyParams> }>('/v1/keys/:id', { schema: { summary: 'Revoke an API key (admin only)', params: KeyParams } }, async (req) => store.revokeKey(req.params.id));

  const view = (name: string) => ({ name, limits: store.limits(name), usage: { ...admission.usage(name), ...(volumes ? { volumeBytes: volumes.usage(name).usedBytes } : {}) } });
  app.get('/v1/tenants', { schema: { summary: 'Tenants with keys or limits, their limits and usage (admin only)' } }, async () => ({ tenants: store.tenants().map(view) }));
  app.get<{ Params: Static<typeof TenantParams> }>('/v1/tenants/:name', { schema: { summary: "A tenant's limits and usage (admin only)", params: TenantParams } }, async (req) => view(req.params.name));
  app.put<{ Params: Static<typeof TenantParams>; Body: Static<typeof LimitsBody> }>(
    '/v1/tenants/:name',
    { schema: { summary: "Set a tenant's limits (admin only); unset ones keep their value or default", params: TenantParams, body: LimitsBody } },
    async (req) => {
      store.setLimits(req.params.name, req.body);
      return view(req.params.name);
    },
  );
}
