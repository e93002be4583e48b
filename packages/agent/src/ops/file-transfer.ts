// file.read and file.write: streamed in chunks under flow control, so neither end ever holds
// a whole file. Uploads go to a temp file in the target directory and are renamed into
// place only when complete, so an aborted or failed upload leaves nothing half-written.

import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AgentError, MAX_BODY_BYTES } from '@kiln/protocol';
import type { OpHandler } from './context.js';
import { fsCall } from './files.js';

export const readFile: OpHandler<'file.read'> = async (ctx, { path }) => {
  // O_NONBLOCK so opening a FIFO cannot hang a pool thread; it is refused below.
  const fh = await fsCall(path, () => open(path, constants.O_RDONLY | constants.O_NONBLOCK));
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new AgentError('IS_DIRECTORY', `${path} is a directory`);
    if (st.isFIFO() || st.isSocket()) throw new AgentError('INVALID_ARGUMENT', `${path} is not a regular file`);
    const out = ctx.sender('file');
    const hash = createHash('sha256');
    let bytes = 0;
    for (;;) {
      if (ctx.signal.aborted) throw ctx.signal.reason;
      const buf = Buffer.allocUnsafe(MAX_BODY_BYTES);
      const { bytesRead } = await fsCall(path, () => fh.read(buf, 0, buf.length, null));
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      hash.update(chunk);
      bytes += bytesRead;
      if (!out.write(chunk)) await out.drained();
    }
    out.end();
    await out.drained();
    if (ctx.signal.aborted) throw ctx.signal.reason;
    return { bytes, sha256: hash.digest('hex') };
  } finally {
    await fh.close().catch(() => undefined);
  }
};

export const writeFile: OpHandler<'file.write'> = async (ctx, { path, mode = 0o644, mkdirs = false }) => {
  const dir = dirname(path);
  if (mkdirs) await fsCall(dir, () => mkdir(dir, { recursive: true }));
  const dst = await stat(dir).catch((err: unknown) => {
    throw new AgentError((err as { code?: string }).code === 'ENOENT' ? 'NOT_FOUND' : 'INTERNAL', `parent directory ${dir}: ${(err as Error).message}`);
  });
  if (!dst.isDirectory()) throw new AgentError('NOT_DIRECTORY', `parent ${dir} is not a directory`);
  const existing = await lstat(path).catch(() => undefined);
  if (existing?.isDirectory()) throw new AgentError('IS_DIRECTORY', `${path} is a directory`);

  const tmp = join(dir, `.kiln-upload-${randomBytes(8).toString('hex')}.tmp`);
  const fh = await fsCall(tmp, () => open(tmp, 'wx', 0o600));
  let closed = false;
  try {
    const inbox = ctx.input('file');
    const hash = createHash('sha256');
    let bytes = 0;
    for (;;) {
      const chunk = await inbox.read();
      if (chunk === null) break;
      let off = 0;
      while (off < chunk.length) {
        const { bytesWritten } = await fsCall(path, () => fh.write(chunk, off, chunk.length - off, null));
        off += bytesWritten;
      }
      hash.update(chunk);
      bytes += chunk.length;
      inbox.ack(chunk.length);
    }
    await fh.chmod(mode);
    await fh.close();
    closed = true;
    if (ctx.signal.aborted) throw ctx.signal.reason;
    await fsCall(path, () => rename(tmp, path));
    return { bytes, sha256: hash.digest('hex') };
  } catch (err) {
    if (!closed) await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
};

