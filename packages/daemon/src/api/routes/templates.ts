/** Templates (snapshots new sandboxes restore from), pause/resume, and snapshot (fork) of a sandbox. */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { Readable } from 'node:stream';
import { KilnError, toKilnError } from '../../errors.js';
import { BodyStream, sendBody } from '../body-stream.js';
import { buildFromImage, builderInput } from '../../template/from-image.js';
import type { TenantAdmission } from '../../tenancy/limits.js';
import type { PolicyInput } from '../../network/policy.js';
import type { SandboxManager } from '../../sandbox/manager.js';
import { SPEC_LIMITS } from '../../sandbox/spec.js';
import { captureSandbox } from '../../template/capture.js';
import type { TemplateManifest } from '../../template/manifest.js';
import type { TemplateService } from '../../template/service.js';
import { SandboxIdParams } from '@kiln/contract';
import { sandboxView } from '../views.js';
import { tenancyOf, tenantOf } from '../../tenancy/principal.js';
import { planPulls, type PullSpec } from '../../template/pre-pull.js';
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
const BuildQuery = Type.Object(
  {
    name: Type.String({ ...NAME, description: 'Template name (a rebuild of a name makes its next version).' }),
    from: Type.Optional(Type.String({ minLength: 1, maxLength: 512, description: '`archive`: the body is a docker or OCI image archive; any other value: an image reference the builder pulls. Absent: the body is a build context (tar) with a Dockerfile.' })),
    dockerfile: Type.Optional(Type.String({ minLength: 1, maxLength: 512, pattern: '^[^/\\u0000][^\\u0000]*$', description: 'Path of the Dockerfile inside the context (default Dockerfile).' })),
    startCmd: Type.Optional(Type.String({ maxLength: 65536, description: 'JSON array: the start command (default: the image ENTRYPOINT + CMD; [] = none).' })),
    readyPort: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, description: 'A TCP port that must be listening before the snapshot (default: the lowest EXPOSEd one when there is a start command; 0 = none).' })),
    readyCmd: Type.Optional(Type.String({ maxLength: 65536, description: 'JSON array: a command that must exit 0 before the snapshot.' })),
    readyTimeoutMs: Type.Optional(Type.Integer({ minimum: 1000, maximum: 3_600_000, description: 'How long the ready check may take (default 120000).' })),
    network: Type.Optional(Type.String({ maxLength: 65536, description: "JSON: the builder sandbox's egress policy, as in a create (default {\"preset\":\"none\"}, or {\"preset\":\"locked\"} with pull)." })),
    pull: Type.Optional(Type.String({ maxLength: 65536, description: "JSON array of image references pre-pulled into the template's dockerd (registry.kiln.internal/<tenant>/…, or public ones through the pull-through cache): `docker run` of them needs no registry." })),
    memoryMiB: Type.Optional(Type.Integer({ minimum: 256, maximum: 65536 })),
    vcpus: Type.Optional(Type.Integer({ minimum: 1, maximum: 16 })),
    diskGiB: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
  },
  { additionalProperties: false },
);

function jsonArg<T>(field: string, text: string | undefined, check: (v: unknown) => boolean): T | undefined {
  if (text === undefined) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new KilnError('INVALID_ARGUMENT', `${field} must be JSON`, { status: 400, details: { field } });
  }
  if (!check(v)) throw new KilnError('INVALID_ARGUMENT', `${field} has the wrong shape`, { status: 400, details: { field } });
  return v as T;
}
const isArgv = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string' && !x.includes('\u0000'));

const SnapshotBody = Type.Object({ name: Type.String({ ...NAME, description: 'Name of the new template.' }) }, { additionalProperties: false });
const NameParams = Type.Object({ name: Type.String() });
const RemoveQuery = Type.Object(
  { tenant: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[a-z0-9][a-z0-9._-]*$', description: "The admin's only: remove this tenant's template of the name (default: the shared one). Ignored for a tenant's key." })) },
  { additionalProperties: false },
);

/** The images a build pre-pulls, checked before anything starts (the registry must be there and reachable by the builder). */
function prePullPlan(manager: SandboxManager, refs: string[], network: PolicyInput | undefined): PullSpec[] {
  if (refs.length === 0) return [];
  const registry = manager.registry;
  if (!registry) throw new KilnError('INVALID_ARGUMENT', 'this kilnd runs no registry (docker-registry not installed, networking off, or KILN_REGISTRY=0): nothing can be pre-pulled', { status: 400, details: { field: 'pull' } });
  if (network?.preset === 'none') throw new KilnError('INVALID_ARGUMENT', "pull needs the registry, which a builder whose policy is none cannot reach: leave network out (the builder is then locked: DNS and the registry only) or choose locked/default", { status: 400, details: { field: 'pull' } });
  return planPulls(refs, registry.remoteUrl);
}

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
  sizeBytes: t.sizeBytes ?? null,
  version: t.version ?? 1,
  config: t.config ?? null,
  prePulled: t.prePulled ?? [],
  buildMs: t.buildMs,
  createdAt: t.createdAt,
});

export function registerTemplateRoutes(app: FastifyInstance, manager: SandboxManager, templates: TemplateService, admission: TenantAdmission | null = null): void {
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
      const other = await templates.store.byName(req.body.name, null);
      if (other && other.key !== templates.keyFor(shape, image)) {
        throw new KilnError('TEMPLATE_EXISTS', `a different template is already named ${req.body.name}`, { status: 409, details: { field: 'name' } });
      }
      const t = await templates.build(shape, image, { name: req.body.name });
      return reply.status(201).send(templateView(t));
    },
  );

  app.post<{ Querystring: Static<typeof BuildQuery> }>(
    '/v1/templates/build',
    {
      schema: {
        summary: 'Build a template from a Dockerfile (body: the context as a tar) or a container image (body: an image archive, or none with from=REF); streams NDJSON events',
        querystring: BuildQuery,
      },
    },
    async (req, reply) => {
      const q = req.query;
      const mode = q.from === undefined ? 'dockerfile' : q.from === 'archive' ? 'archive' : 'ref';
      const input = mode === 'ref' ? undefined : (req.body as Readable | undefined);
      if (mode !== 'ref' && (!input || typeof (input as Readable).pipe !== 'function')) {
        throw new KilnError('INVALID_ARGUMENT', 'the body must be a tar stream (application/octet-stream)', { status: 400, details: { field: 'body' } });
      }
      const startCmd = jsonArg<string[]>('startCmd', q.startCmd, isArgv);
      const readyCmd = jsonArg<string[]>('readyCmd', q.readyCmd, isArgv);
      const network = jsonArg<PolicyInput>('network', q.network, (v) => typeof v === 'object' && v !== null && !Array.isArray(v));
      const pull = prePullPlan(manager, jsonArg<string[]>('pull', q.pull, isArgv) ?? [], network);
      // A tenant's build: its builder sandbox is the tenant's and counts against its limits.
      // Refused here, before the stream, with a create's 429 when the tenant has no room for it.
      const tenant = tenantOf(req);
      const owners = tenancyOf(req);
      const owner =
        tenant !== null && owners
          ? { own: (id: string) => owners.setOwner(id, tenant), ...(admission ? { admit: (spec: Parameters<TenantAdmission['admit']>[1]) => admission.admit(tenant, spec) } : {}) }
          : undefined;
      if (tenant !== null && admission) admission.check(tenant, manager.specOf(builderInput({ name: q.name, ...(network ? { network } : {}), pull })));
      const out = new BodyStream();
      const send = (ev: Record<string, unknown>): void => void out.write(JSON.stringify(ev) + '\n');
      void buildFromImage(
        manager,
        templates,
        {
          name: q.name,
          tenant,
          ...(owner ? { owner } : {}),
          ...(pull.length ? { pull } : {}),
          mode,
          ...(input ? { input } : {}),
          ...(q.dockerfile ? { dockerfile: q.dockerfile } : {}),
          ...(mode === 'ref' ? { ref: q.from } : {}),
          ...(startCmd ? { startCmd } : {}),
          ...(readyCmd ? { readyCmd } : {}),
          ...(q.readyPort !== undefined ? { readyPort: q.readyPort } : {}),
          ...(q.readyTimeoutMs ? { readyTimeoutMs: q.readyTimeoutMs } : {}),
          ...(network ? { network } : {}),
          shape: {
            memoryMiB: q.memoryMiB ?? SPEC_LIMITS.memoryMiB.default,
            vcpus: q.vcpus ?? SPEC_LIMITS.vcpus.default,
            diskGiB: q.diskGiB ?? SPEC_LIMITS.diskGiB.default,
          },
        },
        (ev) => send(ev),
      ).then(
        (t) => send({ type: 'done', template: templateView(t) }),
        (err: unknown) => {
          const k = toKilnError(err, 'TEMPLATE_BUILD_FAILED');
          req.log.warn({ err: k, template: q.name }, 'template build failed');
          // The context may not have been read to its end: drain it so the response can finish.
          input?.resume();
          send({ type: 'error', error: { code: k.code, message: k.message, ...(k.details ? { details: k.details } : {}) } });
        },
      ).finally(() => out.end());
      return sendBody(reply, out, 'application/x-ndjson', { flushHeaders: true });
    },
  );

  app.delete<{ Params: Static<typeof NameParams>; Querystring: Static<typeof RemoveQuery> }>(
    '/v1/templates/:name',
    { schema: { summary: 'Remove a template (every version of it) of the caller’s namespace', params: NameParams, querystring: RemoveQuery } },
    async (req, reply) => {
      // Names are per tenant: a tenant removes its own (shared and other tenants' ones are not
      // found); the admin removes a shared one, or with ?tenant= that tenant's.
      const tenant = tenantOf(req);
      const owner = tenant ?? req.query.tenant ?? null;
      const mine = await templates.store.versions(req.params.name, owner);
      if (mine.length === 0) throw new KilnError('TEMPLATE_NOT_FOUND', `template ${req.params.name} not found`, { status: 404 });
      for (const t of mine) await templates.store.remove(t.key);
      return reply.status(204).send();
    },
  );

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
      // Names are per tenant: only the caller's own namespace can hold the name already.
      if (await templates.store.byName(req.body.name, tenantOf(req))) {
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
