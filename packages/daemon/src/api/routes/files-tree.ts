/**
 * Whole directories in the guest, and renames.
 *   POST /v1/sandboxes/:id/files/rename {from, to}          rename(2) in the guest
 *   GET  /v1/sandboxes/:id/files/tar?path=DIR               a tar stream of DIR (application/x-tar)
 *   PUT  /v1/sandboxes/:id/files/tar?path=DIR  (x-tar body) extracted under DIR, created if missing
 * The tar streams are the guest's own `tar` (GNU tar in the image) run as a command, so they are
 * flow-controlled like exec output: a download's bytes are acked to the guest only once the
 * response took them, an upload's are sent as the guest takes them. Each call is audited.
 */
import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import type { Readable } from 'node:stream';
import { invalidArgument, KilnError } from '../../errors.js';
import { BodyStream } from '../body-stream.js';
import type { SandboxManager } from '../../sandbox/manager.js';
import { SandboxIdParams } from '@kiln/contract';
import { fromGuestError } from '../guest-errors.js';
import { fileRecord, NO_AUDIT, type AuditSink } from '../../audit/guest-records.js';

const GuestPath = Type.String({ minLength: 1, maxLength: 4096, pattern: '^/' });
const RenameBody = Type.Object({ from: GuestPath, to: GuestPath }, { additionalProperties: false });
const DirQuery = Type.Object({ path: GuestPath }, { additionalProperties: false });
type Params = Static<typeof SandboxIdParams>;

const STDERR_TAIL = 2000;

export function registerFileTreeRoutes(app: FastifyInstance, manager: SandboxManager, audit: AuditSink = NO_AUDIT): void {
  // Tar uploads arrive as raw byte streams, like file uploads.
  app.addContentTypeParser('application/x-tar', (_req, payload, done) => done(null, payload));

  app.post<{ Params: Params; Body: Static<typeof RenameBody> }>(
    '/v1/sandboxes/:id/files/rename',
    { schema: { summary: 'Rename a file or directory in the guest', params: SandboxIdParams, body: RenameBody } },
    async (req) => {
      const { from, to } = req.body;
      try {
        await manager.withAgent(req.params.id, 'files', (agent) => agent.rename(from, to));
      } catch (err) {
        const e = fromGuestError(err);
        await audit.append(fileRecord(req.params.id, 'rename', from, { errorCode: e.code })).catch(() => undefined);
        throw e;
      }
      await audit.append({ ...fileRecord(req.params.id, 'rename', from, {}), data: { op: 'rename', path: from, to } });
      return { ok: true };
    },
  );

  app.get<{ Params: Params; Querystring: Static<typeof DirQuery> }>(
    '/v1/sandboxes/:id/files/tar',
    { schema: { summary: 'Download a directory as a tar stream', params: SandboxIdParams, querystring: DirQuery } },
    async (req, reply) => {
      const dir = req.query.path;
      const use = await manager.useAgent(req.params.id, 'files');
      reply.raw.once('close', use.release);
      try {
        const st = await use.agent.stat(dir);
        if (st.type !== 'dir') throw invalidArgument(`${dir} is not a directory`, { field: 'path' });
      } catch (err) {
        use.release();
        throw fromGuestError(err);
      }
      const out = new BodyStream();
      let bytes = 0;
      let stderr = '';
      const handle = use.agent.exec(
        { argv: ['tar', '-C', dir, '-cf', '-', '.'] },
        {
          // Acked to the guest once the response took it: a client that stops reading stops tar.
          onStdout: (b) => {
            bytes += b.length;
            return out.write(b);
          },
          onStderr: (b) => void (stderr = (stderr + b.toString()).slice(-STDERR_TAIL)),
        },
      );
      reply.raw.once('close', () => {
        if (!out.done) void handle.signal('SIGKILL').catch(() => undefined);
      });
      handle.result
        .then(async (r) => {
          const failed = r.exitCode !== 0;
          await audit.append(fileRecord(req.params.id, 'tar-download', dir, failed ? { errorCode: 'TAR_FAILED' } : { bytes }));
          if (failed) out.destroy(new Error(`tar exited ${r.exitCode ?? r.signal}: ${stderr.trim()}`));
          else out.end();
        })
        .catch((err: unknown) => out.destroy(fromGuestError(err)))
        .finally(use.release);
      return reply.type('application/x-tar').header('cache-control', 'no-store').send(out);
    },
  );

  app.put<{ Params: Params; Querystring: Static<typeof DirQuery> }>(
    '/v1/sandboxes/:id/files/tar',
    { schema: { summary: 'Upload a tar stream (application/x-tar), extracted under a directory (created if missing)', params: SandboxIdParams, querystring: DirQuery } },
    async (req, reply) => {
      const dir = req.query.path;
      const body = req.body as Readable | undefined;
      if (!body || typeof body.pipe !== 'function') throw invalidArgument('tar upload needs an application/x-tar body', { field: 'body' });
      const use = await manager.useAgent(req.params.id, 'files');
      reply.raw.once('close', use.release);
      let stderr = '';
      let bytes = 0;
      const handle = use.agent.exec(
        { argv: ['sh', '-c', 'mkdir -p -- "$1" && exec tar -C "$1" -xf -', 'sh', dir], stdin: true },
        { onStderr: (b) => void (stderr = (stderr + b.toString()).slice(-STDERR_TAIL)) },
      );
      try {
        try {
          for await (const chunk of body) {
            const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
            bytes += b.length;
            await handle.writeStdin(b);
          }
        } finally {
          handle.endStdin();
        }
        const r = await handle.result.catch((err: unknown) => {
          throw fromGuestError(err);
        });
        if (r.exitCode !== 0) throw new KilnError('INVALID_ARGUMENT', `tar could not extract the upload into ${dir} (exit ${r.exitCode ?? r.signal}): ${stderr.trim()}`, { status: 400, details: { field: 'body' } });
      } catch (err) {
        void handle.signal('SIGKILL').catch(() => undefined);
        await audit.append(fileRecord(req.params.id, 'tar-upload', dir, { errorCode: (err as { code?: string }).code ?? 'INTERNAL' })).catch(() => undefined);
        use.release();
        throw err;
      }
      await audit.append(fileRecord(req.params.id, 'tar-upload', dir, { bytes }));
      use.release();
      return { ok: true, bytes };
    },
  );
}
