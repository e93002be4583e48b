/**
 * envd's REST file transfer:
 *   GET  /files?path=&username=   the file's bytes (application/octet-stream); 404/400 JSON {code, message}
 *   POST /files?path=&username=   multipart/form-data (field `file`, several parts at once, each
 *                                 part's filename its path when `path` is absent) or a raw
 *                                 application/octet-stream body → 200 [{path, name, type:"file"}]
 * Uploads are written by the user itself in the guest (parents created, mode by its umask,
 * owned by it); downloads are read by the user too, streamed with flow control.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { posix } from 'node:path';
import type { GuestAgent } from '../../sandbox/guest-agent.js';
import { runAs, shellError } from './guest-shell.js';
import { resolvePath, userFromQuery } from './user.js';
import { ConnectError } from './connect-codec.js';
import { guestError } from './proc-errors.js';

/** Most bytes of one multipart upload (parsed in memory; streams go as octet-stream). */
export const MAX_MULTIPART_BYTES = 512 * 1024 * 1024;

const WRITE = 'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"';

const HTTP_STATUS: Record<string, number> = { not_found: 404, invalid_argument: 400, permission_denied: 403, already_exists: 409, resource_exhausted: 507, unavailable: 502 };

export function sendRestError(res: ServerResponse, err: unknown): void {
  const e = err instanceof ConnectError ? err : guestError(err);
  const status = HTTP_STATUS[e.code] ?? 500;
  const body = Buffer.from(JSON.stringify({ code: status, message: e.message }));
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

/** Audits one upload: its bytes, or the error code. */
export type UploadAudit = (path: string, r: { bytes?: number; errorCode?: string }) => Promise<unknown>;

async function writeAs(agent: GuestAgent, user: string, path: string, data: AsyncIterable<Buffer>, audit: UploadAudit): Promise<{ path: string; name: string; type: 'file' }> {
  let bytes = 0;
  const counted = (async function* () {
    for await (const c of data) {
      bytes += c.length;
      yield c;
    }
  })();
  try {
    const r = await runAs(agent, user, ['sh', '-c', WRITE, 'sh', path], { cwd: '/', stdin: counted });
    if (r.exitCode !== 0) throw shellError(r, `write ${path}`);
  } catch (err) {
    await audit(path, { errorCode: (err as { code?: string }).code ?? 'internal' }).catch(() => undefined);
    throw err;
  }
  await audit(path, { bytes });
  return { path, name: posix.basename(path), type: 'file' };
}

async function* chunks(b: Buffer): AsyncGenerator<Buffer> {
  for (let at = 0; at < b.length; at += 256 * 1024) yield b.subarray(at, at + 256 * 1024);
}

export async function uploadFiles(agent: GuestAgent, req: IncomingMessage, url: URL, res: ServerResponse, audit: UploadAudit): Promise<void> {
  const user = userFromQuery(url.searchParams.get('username'));
  const pathParam = url.searchParams.get('path');
  const ct = (req.headers['content-type'] ?? '').toLowerCase();
  const written: Array<{ path: string; name: string; type: 'file' }> = [];
  if (ct.startsWith('multipart/form-data')) {
    // undici's multipart parser (the same the SDK's fetch uses), fed from the request.
    const form = await new Response(Readable.toWeb(req) as ReadableStream, { headers: { 'content-type': req.headers['content-type'] as string } }).formData().catch((err: unknown) => {
      throw new ConnectError('invalid_argument', `cannot parse multipart body: ${(err as Error).message}`);
    });
    const parts = form.getAll('file');
    if (parts.length === 0) throw new ConnectError('invalid_argument', 'multipart body has no "file" part');
    for (const part of parts) {
      if (typeof part === 'string') throw new ConnectError('invalid_argument', 'the "file" part must be a file');
      const target = pathParam ?? part.name;
      if (!target) throw new ConnectError('invalid_argument', 'no path: give ?path= or a filename per part');
      const bytes = Buffer.from(await part.arrayBuffer());
      if (bytes.length > MAX_MULTIPART_BYTES) throw new ConnectError('resource_exhausted', `multipart upload larger than ${MAX_MULTIPART_BYTES} bytes: send application/octet-stream`);
      written.push(await writeAs(agent, user, resolvePath(target, user), chunks(bytes), audit));
    }
  } else if (ct.startsWith('application/octet-stream') || ct === '') {
    if (!pathParam) throw new ConnectError('invalid_argument', 'an application/octet-stream upload needs ?path=');
    const gz = String(req.headers['content-encoding'] ?? '').toLowerCase() === 'gzip';
    const src: AsyncIterable<Buffer> = gz ? req.pipe(createGunzip()) : req;
    written.push(await writeAs(agent, user, resolvePath(pathParam, user), src, audit));
  } else {
    throw new ConnectError('invalid_argument', `unsupported content type ${JSON.stringify(ct)}: multipart/form-data or application/octet-stream`);
  }
  const body = Buffer.from(JSON.stringify(written));
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

export async function downloadFile(agent: GuestAgent, url: URL, res: ServerResponse): Promise<void> {
  const user = userFromQuery(url.searchParams.get('username'));
  const p = url.searchParams.get('path');
  if (!p) throw new ConnectError('invalid_argument', 'path is required');
  const path = resolvePath(p, user);
  try {
    const st = await agent.stat(path);
    if (st.type === 'dir') throw new ConnectError('invalid_argument', `path ${path} is a directory`);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'NOT_FOUND') throw new ConnectError('not_found', `file ${path} not found`);
    throw err;
  }
  // Read by the user itself (`cat` as that user): its permissions apply, as with envd. The
  // response starts with the first byte (or the exit), so a refused read is still an error
  // status; each chunk is acked to the guest only once the client's socket took it.
  const head = () => {
    if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/octet-stream' });
  };
  let stderr = '';
  const h = agent.exec(
    { argv: ['cat', '--', path], user, cwd: '/' },
    {
      onStdout: async (b) => {
        head();
        if (!res.write(b) && !res.destroyed) {
          await new Promise<void>((r) => {
            res.once('drain', r);
            res.once('close', r);
          });
        }
      },
      onStderr: (b) => void (stderr += b.toString('utf8')),
    },
  );
  const gone = () => {
    if (!res.writableFinished) void h.signal('SIGKILL').catch(() => undefined);
  };
  res.once('close', gone);
  const r = await h.result;
  res.off('close', gone);
  if (r.exitCode !== 0) {
    if (res.headersSent) return void res.destroy();
    throw shellError({ exitCode: r.exitCode, stdout: Buffer.alloc(0), stderr: stderr.trim() }, `read ${path}`);
  }
  if (!res.headersSent) res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 0 });
  res.end();
}
