/**
 * Files in the guest. Uploads and downloads are raw byte streams (application/octet-stream),
 * never buffered whole: the guest protocol moves them in chunks with flow control.
 * Uploads, downloads, removals and mkdirs get an audit record (path, bytes, sha256) that is
 * durable before the call returns (for a download: before the last byte is sent).
 * Downloads are flow-controlled end to end (body-stream.ts): a client that stops reading stops
 * the guest's reads.
 */
import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { PassThrough, type Readable } from 'node:stream';
import { invalidArgument } from '../../errors.js';
import { bodyFrom } from '../body-stream.js';
import type { SandboxManager } from '../../sandbox/manager.js';
import { MkdirBody, PathQuery, SandboxIdParams } from '@kiln/contract';
import { fromGuestError } from '../guest-errors.js';
import { fileRecord, NO_AUDIT, type AuditSink } from '../../audit/guest-records.js';

type Params = Static<typeof SandboxIdParams>;
type Query = Static<typeof PathQuery>;

const guest = async <T>(p: Promise<T>): Promise<T> => {
  try {
    return await p;
  } catch (err) {
    throw fromGuestError(err);
  }
};

export function registerFileRoutes(app: FastifyInstance, manager: SandboxManager, audit: AuditSink = NO_AUDIT): void {
  const schema = (summary: string) => ({ summary, params: SandboxIdParams, querystring: PathQuery });

  app.put<{ Params: Params; Querystring: Query }>('/v1/sandboxes/:id/files', { schema: schema('Upload a file (octet-stream body)') }, async (req, reply) => {
    // Under the sandbox's shared lock while it lasts (a snapshot or pause waits for the file to
    // be written), not past a client that went away.
    const use = await manager.useAgent(req.params.id, 'files');
    reply.raw.once('close', use.release);
    const agent = use.agent;
    const body = req.body as Readable | undefined;
    if (!body || typeof body.pipe !== 'function') {
      use.release();
      throw invalidArgument('upload needs an application/octet-stream body', { field: 'body' });
    }
    const mode = req.query.mode === undefined ? undefined : parseInt(req.query.mode, 8);
    // The agent client may destroy its source on error; keep the request itself alive so the
    // client can still read our error response.
    const src = new PassThrough();
    body.pipe(src);
    try {
      const r = await guest(agent.writeFile(req.query.path, src, { ...(mode === undefined ? {} : { mode }), mkdirs: req.query.parents ?? false }));
      await audit.append(fileRecord(req.params.id, 'upload', req.query.path, { bytes: r.bytes, sha256: r.sha256, ...(mode === undefined ? {} : { mode }) }));
      return r;
    } catch (err) {
      await audit.append(fileRecord(req.params.id, 'upload', req.query.path, { errorCode: (err as { code?: string }).code ?? 'INTERNAL' })).catch(() => undefined);
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
    } finally {
      use.release();
    }
  });

  app.get<{ Params: Params; Querystring: Query }>('/v1/sandboxes/:id/files', { schema: schema('Download a file (octet-stream)') }, async (req, reply) => {
    // Under the sandbox's shared lock until the last byte is read from the guest or the client went away.
    const use = await manager.useAgent(req.params.id, 'files');
    reply.raw.once('close', use.release);
    const agent = use.agent;
    let st: Awaited<ReturnType<typeof agent.stat>>;
    try {
      st = await guest(agent.stat(req.query.path));
      if (st.type === 'dir') throw invalidArgument(`${req.query.path} is a directory`, { field: 'path' });
    } catch (err) {
      use.release();
      throw err;
    }
    const { stream, result } = agent.readFile(req.query.path);
    // The guest's bytes are acked as the client takes them (bodyFrom pulls from the agent
    // stream only then), and the last byte leaves only once the download's record is durable.
    const audited = async function* (signal: AbortSignal): AsyncGenerator<Buffer> {
      signal.addEventListener('abort', () => stream.destroy(), { once: true }); // the client left: cancel the read
      try {
        for await (const chunk of stream) yield chunk as Buffer;
        const r = await result;
        await audit.append(fileRecord(req.params.id, 'download', req.query.path, { bytes: r.bytes, sha256: r.sha256 }));
      } catch (err) {
        const e = fromGuestError(err);
        void audit.append(fileRecord(req.params.id, 'download', req.query.path, { errorCode: signal.aborted ? 'CANCELLED' : e.code })).catch(() => undefined);
        throw e;
      } finally {
        use.release();
      }
    };
    const out = bodyFrom(audited);
    return reply.header('content-length', st.size).type('application/octet-stream').send(out);
  });

  app.get<{ Params: Params; Querystring: Query }>('/v1/sandboxes/:id/files/stat', { schema: schema('Stat a path') }, async (req) =>
    manager.withAgent(req.params.id, 'files', (agent) => guest(agent.stat(req.query.path))),
  );

  app.get<{ Params: Params; Querystring: Query }>('/v1/sandboxes/:id/files/list', { schema: schema('List a directory') }, async (req) =>
    manager.withAgent(req.params.id, 'files', (agent) => guest(agent.list(req.query.path))),
  );

  app.post<{ Params: Params; Body: Static<typeof MkdirBody> }>(
    '/v1/sandboxes/:id/files/mkdir',
    { schema: { summary: 'Make a directory', params: SandboxIdParams, body: MkdirBody } },
    async (req) => {
      await manager.withAgent(req.params.id, 'files', (agent) => guest(agent.mkdir(req.body.path, { recursive: req.body.recursive ?? false })));
      await audit.append(fileRecord(req.params.id, 'mkdir', req.body.path, { recursive: req.body.recursive ?? false }));
      return { ok: true };
    },
  );

  app.delete<{ Params: Params; Querystring: Query }>('/v1/sandboxes/:id/files', { schema: schema('Remove a file or directory') }, async (req) => {
    await manager.withAgent(req.params.id, 'files', (agent) => guest(agent.remove(req.query.path, { recursive: req.query.recursive ?? false })));
    await audit.append(fileRecord(req.params.id, 'remove', req.query.path, { recursive: req.query.recursive ?? false }));
    return { ok: true };
  });
}
