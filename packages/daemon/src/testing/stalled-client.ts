/** HTTP over a unix socket for flow-control tests: a client that reads nothing until told to. */
import { mkdtempSync, rmSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';

export interface UnixServer {
  socketPath: string;
  /** Starts a request and pauses its response at once: the client reads nothing. */
  stalled(method: string, path: string, body?: object): Promise<IncomingMessage>;
  /** Destroys every response a test left unread, closes the app, removes the socket's dir. */
  close(): Promise<void>;
}

export async function listenUnix(app: FastifyInstance): Promise<UnixServer> {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-flow-'));
  const socketPath = join(dir, 'api.sock');
  await app.listen({ path: socketPath });
  const responses: IncomingMessage[] = [];
  return {
    socketPath,
    stalled: (method, path, body) =>
      new Promise((resolve, reject) => {
        const req = request({ socketPath, method, path, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
          res.pause();
          responses.push(res);
          resolve(res);
        });
        req.on('error', reject);
        req.end(body ? JSON.stringify(body) : undefined);
      }),
    close: async () => {
      for (const r of responses) r.destroy();
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Reads the rest of a response. */
export async function readAll(res: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  res.resume();
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Reads a response until `done(text so far)` holds, then pauses it again (the response stays open). */
export function readUntil(res: IncomingMessage, done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const finish = (err?: Error) => {
      res.pause();
      res.off('data', onData);
      res.off('end', onEnd);
      res.off('error', finish);
      if (err) reject(err);
      else resolve(text);
    };
    const onData = (c: Buffer) => {
      text += c.toString('utf8');
      if (done(text)) finish();
    };
    const onEnd = () => finish(new Error(`the response ended before the condition held; got ${text.length} chars`));
    res.on('data', onData);
    res.once('end', onEnd);
    res.once('error', finish);
    res.resume();
  });
}
