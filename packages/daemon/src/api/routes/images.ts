/**
 * The private registry from the host (docs/registry.md), authenticated as any API call (the
 * unix socket is the admin; a TCP key is its tenant). A tenant's images are `<tenant>/NAME`;
 * the admin names the whole repository (`library/NAME` is shared read-only with every tenant).
 *   POST /v1/images/push?name=NAME&tag=TAG   body: a docker-archive or OCI layout tar
 *   POST /v1/images/push-from-sandbox {sandboxId, image, name, tag?}   `docker save` in the sandbox, then the same
 *   GET  /v1/images                          {host, repositories}: what the caller may pull
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { invalidArgument, KilnError } from '../../errors.js';
import type { SandboxManager } from '../../sandbox/manager.js';
import { canSee, tenantOf } from '../../tenancy/principal.js';
import { registryAccess } from '../../registry/authz.js';
import { pushArchive } from '../../registry/push.js';
import type { RegistryService } from '../../registry/service.js';
import { REGISTRY_HOST } from '../../registry/tls.js';

const REPO = '^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$';
const PushQuery = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 200, pattern: REPO }), tag: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$' })) },
  { additionalProperties: false },
);
const FromSandboxBody = Type.Object(
  {
    sandboxId: Type.String(),
    image: Type.String({ minLength: 1, maxLength: 256, pattern: '^[A-Za-z0-9][A-Za-z0-9._/:@-]*$' }),
    name: Type.String({ minLength: 1, maxLength: 200, pattern: REPO }),
    tag: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$' })),
  },
  { additionalProperties: false },
);

/** The repository a caller's NAME means: a tenant's own namespace, or the admin's name as given. */
function repositoryFor(req: FastifyRequest, name: string): string {
  const tenant = tenantOf(req);
  const repo = tenant === null ? name : `${tenant}/${name}`;
  if (tenant === null && !repo.includes('/')) throw invalidArgument(`name a repository with a namespace, e.g. library/${name}`, { field: 'name' });
  const a = registryAccess(tenant, 'PUT', `/v2/${repo}/manifests/x`);
  if (!a.ok) throw new KilnError('REGISTRY_DENIED', a.reason, { status: 403 });
  return repo;
}

export function registerImageRoutes(app: FastifyInstance, manager: SandboxManager, registry: RegistryService): void {
  const tmpFile = () => {
    const dir = join(registry.dir, 'tmp');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return join(dir, `push-${randomBytes(8).toString('hex')}`);
  };
  const push = async (archive: string, repo: string, tag: string) => ({ host: REGISTRY_HOST, ...(await pushArchive(registry.port, archive, repo, tag, archive)), reference: `${REGISTRY_HOST}/${repo}:${tag}` });

  app.post<{ Querystring: Static<typeof PushQuery> }>(
    '/v1/images/push',
    { schema: { summary: 'Push an image archive (docker save / OCI layout tar) to the private registry', querystring: PushQuery } },
    async (req, reply) => {
      const repo = repositoryFor(req, req.query.name);
      const body = req.body as Readable | undefined;
      if (!body || typeof body.pipe !== 'function') throw invalidArgument('push needs the archive as an application/x-tar or application/octet-stream body', { field: 'body' });
      const file = tmpFile();
      try {
        await pipeline(body, createWriteStream(file, { mode: 0o600 }));
        return reply.status(201).send(await push(file, repo, req.query.tag ?? 'latest'));
      } finally {
        rmSync(file, { force: true });
      }
    },
  );

  app.post<{ Body: Static<typeof FromSandboxBody> }>(
    '/v1/images/push-from-sandbox',
    { schema: { summary: "Push an image from a sandbox's dockerd (docker save) to the private registry", body: FromSandboxBody } },
    async (req, reply) => {
      const { sandboxId, image, name } = req.body;
      if (!canSee(req, sandboxId)) throw new KilnError('SANDBOX_NOT_FOUND', `sandbox ${sandboxId} not found`, { status: 404 });
      const repo = repositoryFor(req, name);
      const file = tmpFile();
      try {
        const out = createWriteStream(file, { mode: 0o600 });
        const stderr: Buffer[] = [];
        const r = await manager.withAgent(sandboxId, 'exec', async (agent) =>
          agent.exec({ argv: ['docker', 'save', image] }, {
            onStdout: (b) => new Promise<void>((ok) => (out.write(b) ? ok() : out.once('drain', ok))),
            onStderr: (b) => void stderr.push(b),
          }).result,
        );
        await new Promise<void>((ok, ko) => out.end((err?: Error | null) => (err ? ko(err) : ok())));
        if (r.exitCode !== 0) throw new KilnError('REGISTRY_PUSH_FAILED', `docker save ${image} failed in ${sandboxId}: ${Buffer.concat(stderr).toString('utf8').trim().slice(-500)}`, { status: 400 });
        return reply.status(201).send(await push(file, repo, req.body.tag ?? 'latest'));
      } finally {
        rmSync(file, { force: true });
      }
    },
  );

  app.get('/v1/images', { schema: { summary: 'Repositories in the private registry the caller may pull' } }, async (req) => {
    const tenant = tenantOf(req);
    const catalog = await new Promise<string[]>((resolve) => {
      get({ host: '127.0.0.1', port: registry.port, path: '/v2/_catalog?n=1000' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { repositories?: string[] }).repositories ?? []);
          } catch {
            resolve([]);
          }
        });
      }).on('error', () => resolve([]));
    });
    return { host: REGISTRY_HOST, repositories: catalog.filter((r) => registryAccess(tenant, 'GET', `/v2/${r}/tags/list`).ok) };
  });
}
