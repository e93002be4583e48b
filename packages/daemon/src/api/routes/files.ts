/**
 * Files in the guest. Uploads and downloads are raw byte streams (application/octet-stream),
 * never buffered whole: the guest protocol moves them in chunks with flow control.
 */
import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { PassThrough, type Readable } from 'node:stream';
import { invalidArgument } from '../../errors.js';
import type { SandboxManager } from '../../sandbox/manager.js';
import { MkdirBody, PathQuery, SandboxIdParams } from '../schemas.js';
import { fromGuestError } from '../guest-errors.js';

type Params = Static<typeof SandboxIdParams>;
type Query = Static<typeof PathQuery>;

const guest = async <T>(p: Promise<T>): Promise<T> => {
  try {
    return await p;
  } catch (err) {
    throw fromGuestError(err);
  }
};

export function registerFileRoutes(app: FastifyInstance, manager: SandboxManager): void {
  const schema = (summary: string) => ({ summary, params: SandboxIdParams, querystring: PathQuery });

  app.put<{ Params: Params; Querystring: Query }>('/v1/sandboxes/:id/files', { schema: schema('Upload a file (octet-stream body)') }, async (req) => {
    const agent = manager.agentFor(req.params.id, 'files');
    const body = req.body as Readable | undefined;
    if (!body || typeof body.pipe !== 'function') throw invalidArgument('upload needs an application/octet-stream body', { field: 'body' });
    const mode = req.query.mode === undefined ? undefined : parseInt(req.query.mode, 8);
    // The agent client may destroy its source on error; keep the request itself alive so the
    // client can still read our error response.
    const src = new PassThrough();
    body.pipe(src);
    try {
      return await guest(agent.writeFile(req.query.path, src, { ...(mode === undefined ? {} : { mode }), mkdirs: req.query.parents ?? false }));
    } catch (err) {
      // Drain what the client is still sending so it reads our error instead of a reset.
      body.unpipe(src);
      if (!body.readableEnded) {
        body.resume();
        await new Promise((r) => {
          body.once('end', r);
          body.once('error', r);
          body.once('close', r);
        });
      }
      throw err;
    }
  });

  app.get<{ Params: Params; Querystring: Query }>('/v1/sandboxes/:id/files', { schema: schema('Download a file (octet-stream)') }, async (req, reply) => {
    const agent = manager.agentFor(req.params.id, 'files');
    const st = await guest(agent.stat(req.query.path));
    if (st.type === 'dir') throw invalidArgument(`${req.query.path} is a directory`, { field: 'path' });
    const { stream, result } = agent.readFile(req.query.path);
    result.catch((err: unknown) => stream.destroy(fromGuestError(err)));
    return reply.type('application/octet-stream').header('content-length', st.size).send(stream);
  });

  app.get<{ Params: Params; Querystring: Query }>('/v1/sandboxes/:id/files/stat', { schema: schema('Stat a path') }, async (req) =>
    guest(manager.agentFor(req.params.id, 'files').stat(req.query.path)),
  );

  app.get<{ Params: Params; Querystring: Query }>('/v1/sandboxes/:id/files/list', { schema: schema('List a directory') }, async (req) =>
    guest(manager.agentFor(req.params.id, 'files').list(req.query.path)),
  );

  app.post<{ Params: Params; Body: Static<typeof MkdirBody> }>(
    '/v1/sandboxes/:id/files/mkdir',
    { schema: { summary: 'Make a directory', params: SandboxIdParams, body: MkdirBody } },
    async (req) => {
      await guest(manager.agentFor(req.params.id, 'files').mkdir(req.body.path, { recursive: req.body.recursive ?? false }));
      return { ok: true };
    },
  );

  app.delete<{ Params: Params; Querystring: Query }>('/v1/sandboxes/:id/files', { schema: schema('Remove a file or directory') }, async (req) => {
    await guest(manager.agentFor(req.params.id, 'files').remove(req.query.path, { recursive: req.query.recursive ?? false }));
    return { ok: true };
  });
}
