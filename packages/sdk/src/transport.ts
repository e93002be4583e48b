/**
 * How the SDK reaches kilnd: HTTP over a unix socket (node:http, Node only) or over TCP to a URL
 * (fetch, so it also runs in browsers; node:https when a private CA is given). Every request
 * carries the API key as `Authorization: Bearer …` when one is set.
 */
import { errorClassFor, KilnError } from './errors.js';
import { builtin } from './builtin.js';

export type Body = string | Uint8Array | AsyncIterable<Uint8Array>;

export interface HttpRequest {
  method: string;
  /** Path and query, e.g. `/v1/sandboxes?wait=true`. */
  path: string;
  json?: unknown;
  /** A raw body (application/octet-stream unless `contentType` says otherwise). */
  body?: Body;
  contentType?: string;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  header(name: string): string | null;
  /** The body as it arrives; iterate it once. */
  body: AsyncIterable<Uint8Array>;
  /** Stops reading (the connection closes). */
  cancel(): void;
}

export interface Transport {
  /** Where it connects, for messages. */
  readonly target: string;
  request(req: HttpRequest): Promise<HttpResponse>;
  /** Headers every request carries (the API key). */
  readonly headers: Record<string, string>;
  /** A connection for node transports (WebSocket upgrades); absent for fetch. */
  readonly node?: { socketPath?: string; url?: URL; ca?: string | Uint8Array };
}

export interface TransportOptions {
  url?: string;
  socket?: string;
  apiKey?: string;
  /** PEM of a CA to trust for https (a self-signed kilnd); selects the node:https transport. */
  ca?: string | Uint8Array;
  /** Use node:http/https even for a URL (bodies are then Node streams, e.g. for a CLI). */
  node?: boolean;
}

export function unreachable(target: string, err: unknown): KilnError {
  const code = (err as { code?: string; cause?: { code?: string } }).code ?? (err as { cause?: { code?: string } }).cause?.code ?? 'ERROR';
  const cls = errorClassFor('DAEMON_UNREACHABLE');
  const message = `cannot reach kilnd at ${target} (${code})`;
  return cls ? new cls(message, { cause: err }) : new KilnError('DAEMON_UNREACHABLE', message, { cause: err });
}

const toBytes = (b: string | Uint8Array): Uint8Array => (typeof b === 'string' ? new TextEncoder().encode(b) : b);

export function makeTransport(o: TransportOptions): Transport {
  const headers: Record<string, string> = o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {};
  if (o.socket || o.ca || o.node) return new NodeTransport(o, headers);
  if (!o.url) throw new KilnError('INVALID_ARGUMENT', 'Kiln.connect needs a url or a socket', { status: 0 });
  return new FetchTransport(o.url.replace(/\/+$/, ''), headers);
}

class FetchTransport implements Transport {
  constructor(
    readonly target: string,
    readonly headers: Record<string, string>,
  ) {}

  async request(req: HttpRequest): Promise<HttpResponse> {
    const headers: Record<string, string> = { ...this.headers };
    let body: BodyInit | undefined;
    let duplex = false;
    if (req.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(req.json);
    } else if (req.body !== undefined) {
      headers['content-type'] = req.contentType ?? 'application/octet-stream';
      if (typeof req.body === 'string' || req.body instanceof Uint8Array) body = toBytes(req.body) as BodyInit;
      else {
        body = iterableToStream(req.body) as BodyInit;
        duplex = true;
      }
    }
    // Our own controller: cancel() must end a body a reader is waiting on (ReadableStream.cancel
    // cannot while the stream is locked).
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(req.signal?.reason);
    if (req.signal?.aborted) onAbort();
    req.signal?.addEventListener('abort', onAbort, { once: true });
    let res: Response;
    try {
      res = await fetch(this.target + req.path, { method: req.method, headers, body, signal: ctl.signal, ...(duplex ? { duplex: 'half' } : {}) } as RequestInit);
    } catch (err) {
      req.signal?.removeEventListener('abort', onAbort);
      if ((err as Error).name === 'AbortError') throw err;
      throw unreachable(this.target, err);
    }
    const stream = res.body;
    return {
      status: res.status,
      header: (n) => res.headers.get(n),
      body: stream ? streamToIterable(stream, () => req.signal?.removeEventListener('abort', onAbort)) : (async function* () {})(),
      cancel: () => ctl.abort(),
    };
  }
}

function iterableToStream(it: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iter = it[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(c) {
      const r = await iter.next();
      if (r.done) c.close();
      else c.enqueue(r.value);
    },
    async cancel() {
      await iter.return?.();
    },
  });
}

async function* streamToIterable(s: ReadableStream<Uint8Array>, done: () => void): AsyncGenerator<Uint8Array> {
  const reader = s.getReader();
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) return;
      yield r.value;
    }
  } finally {
    reader.releaseLock();
    done();
  }
}

class NodeTransport implements Transport {
  readonly target: string;
  readonly node: { socketPath?: string; url?: URL; ca?: string | Uint8Array };
  constructor(
    o: TransportOptions,
    readonly headers: Record<string, string>,
  ) {
    this.target = o.socket ?? o.url ?? '';
    this.node = o.socket ? { socketPath: o.socket } : { url: new URL(o.url ?? ''), ...(o.ca ? { ca: o.ca } : {}) };
  }

  async request(req: HttpRequest): Promise<HttpResponse> {
    const { url, socketPath, ca } = this.node;
    const https = url?.protocol === 'https:';
    const mod = https ? await builtin<typeof import('node:https')>('node:https') : await builtin<typeof import('node:http')>('node:http');
    const headers: Record<string, string> = { ...this.headers };
    let payload: Uint8Array | undefined;
    if (req.json !== undefined) {
      payload = toBytes(JSON.stringify(req.json));
      headers['content-type'] = 'application/json';
    } else if (req.body !== undefined) {
      headers['content-type'] = req.contentType ?? 'application/octet-stream';
      if (typeof req.body === 'string' || req.body instanceof Uint8Array) payload = toBytes(req.body);
    }
    if (payload) headers['content-length'] = String(payload.length);
    const replayable = req.body === undefined || typeof req.body === 'string' || req.body instanceof Uint8Array;
    const attempt = (retried: boolean): Promise<HttpResponse> => new Promise<HttpResponse>((resolve, reject) => {
      const r = mod.request(
        {
          method: req.method,
          path: (url && url.pathname !== '/' ? url.pathname.replace(/\/+$/, '') : '') + req.path,
          headers,
          ...(socketPath ? { socketPath } : { host: url?.hostname, port: url?.port || (https ? 443 : 80) }),
          ...(ca ? { ca: typeof ca === 'string' ? ca : Buffer.from(ca) } : {}),
          ...(req.signal ? { signal: req.signal } : {}),
        },
        (res) => {
          resolve({
            status: res.statusCode ?? 500,
            header: (n) => {
              const v = res.headers[n.toLowerCase()];
              return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
            },
            body: res,
            cancel: () => res.destroy(),
          });
        },
      );
      r.on('error', (err: NodeJS.ErrnoException) => {
        // A kept-alive connection the server closed just as we reused it: nothing reached kilnd,
        // so the request is sent again on a fresh one (Node's documented pattern).
        if (r.reusedSocket && err.code === 'ECONNRESET' && replayable && !retried) attempt(true).then(resolve, reject);
        else if (err.name === 'AbortError') reject(err);
        else if (['ENOENT', 'ECONNREFUSED', 'EACCES', 'ENOTFOUND', 'EHOSTUNREACH'].includes(err.code ?? '')) reject(unreachable(this.target, err));
        else reject(err);
      });
      if (payload) r.end(payload);
      else if (req.body !== undefined && typeof req.body !== 'string' && !(req.body instanceof Uint8Array)) {
        const src = req.body;
        void (async () => {
          try {
            for await (const chunk of src) if (!r.write(chunk)) await new Promise((ok) => r.once('drain', ok));
            r.end();
          } catch (err) {
            r.destroy(err as Error);
          }
        })();
      } else r.end();
    });
    return attempt(false);
  }
}
