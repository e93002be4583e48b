/**
 * The Connect protocol's JSON codec over HTTP/1.1, server side, as E2B's SDK speaks it
 * (@connectrpc/connect-web's transport): no protobuf runtime, messages are proto3 JSON.
 *  - unary: request `application/json`, response 200 `application/json`, or an error status
 *    with `{"code":"not_found","message":"…"}`;
 *  - server streaming: request `application/connect+json`, one envelope
 *    `[flags u8][length u32 BE][JSON]`; response 200 `application/connect+json`, enveloped
 *    messages (flags 0), each flushed as it is written, then one end-stream envelope (flags 2)
 *    `{}` or `{"error":{code,message}}`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Connect's error codes and the HTTP status each maps to (connectrpc.com/docs/protocol). */
export const CONNECT_STATUS = {
  canceled: 499,
  unknown: 500,
  invalid_argument: 400,
  deadline_exceeded: 504,
  not_found: 404,
  already_exists: 409,
  permission_denied: 403,
  resource_exhausted: 429,
  failed_precondition: 400,
  aborted: 409,
  out_of_range: 400,
  unimplemented: 501,
  internal: 500,
  unavailable: 503,
  data_loss: 500,
  unauthenticated: 401,
} as const;
export type ConnectCode = keyof typeof CONNECT_STATUS;

/** An error answered to the client in Connect's shape, with a Connect code. */
export class ConnectError extends Error {
  readonly code: ConnectCode;
  constructor(code: ConnectCode, message: string, opts: { cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ConnectError';
    this.code = code;
  }
  toJSON(): { code: ConnectCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Envelope flag: the end-stream message. */
export const END_STREAM_FLAG = 0x02;
/** Envelope flag: compressed (we never negotiate compression, so it is refused). */
export const COMPRESSED_FLAG = 0x01;
/** Largest request message accepted (the SDK's requests are small JSON objects). */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

export function encodeEnvelope(flags: number, body: Buffer | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(b.length, 1);
  return Buffer.concat([head, b]);
}

/** Splits a buffer into envelopes; throws invalid_argument on a truncated or compressed one. */
export function decodeEnvelopes(buf: Buffer): Array<{ flags: number; body: Buffer }> {
  const out: Array<{ flags: number; body: Buffer }> = [];
  let at = 0;
  while (at < buf.length) {
    if (buf.length - at < 5) throw new ConnectError('invalid_argument', 'protocol error: incomplete envelope header');
    const flags = buf.readUInt8(at);
    const len = buf.readUInt32BE(at + 1);
    if (buf.length - at - 5 < len) throw new ConnectError('invalid_argument', `protocol error: promised ${len} bytes in enveloped message, got ${buf.length - at - 5} bytes`);
    if (flags & COMPRESSED_FLAG) throw new ConnectError('internal', 'protocol error: received compressed message, but no compression was negotiated');
    out.push({ flags, body: buf.subarray(at + 5, at + 5 + len) });
    at += 5 + len;
  }
  return out;
}

/** The whole request body, at most `limit` bytes. */
export async function readBody(req: IncomingMessage, limit = MAX_REQUEST_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    const b = c as Buffer;
    n += b.length;
    if (n > limit) throw new ConnectError('resource_exhausted', `request message larger than ${limit} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

function parseJson(b: Buffer): Record<string, unknown> {
  if (b.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(b.toString('utf8'));
  } catch (err) {
    throw new ConnectError('invalid_argument', `cannot decode request message: ${(err as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConnectError('invalid_argument', 'request message must be a JSON object');
  return v as Record<string, unknown>;
}

/** Decodes the request message of a unary (`application/json`) or a streaming (`application/connect+json`) call. */
export function decodeRequest(body: Buffer, streaming: boolean): Record<string, unknown> {
  if (!streaming) return parseJson(body);
  const envs = decodeEnvelopes(body);
  const msg = envs.find((e) => (e.flags & END_STREAM_FLAG) === 0);
  if (!msg || envs.length !== 1) throw new ConnectError('invalid_argument', `protocol error: a server-streaming call takes exactly one request message (got ${envs.length})`);
  return parseJson(msg.body);
}

/** The content type a call must carry: unary JSON or enveloped JSON. */
export function requestKind(contentType: string | undefined): 'unary' | 'stream' | null {
  const ct = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
  if (ct === 'application/json') return 'unary';
  if (ct === 'application/connect+json') return 'stream';
  return null;
}

export function sendUnary(res: ServerResponse, msg: unknown): void {
  const body = Buffer.from(JSON.stringify(msg ?? {}), 'utf8');
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

/** Any error as a Connect error: ConnectErrors keep their code, everything else is `internal`/`unknown`. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  return new ConnectError('unknown', err instanceof Error ? err.message : String(err), { cause: err });
}

export function sendUnaryError(res: ServerResponse, err: unknown): void {
  const e = toConnectError(err);
  const body = Buffer.from(JSON.stringify(e.toJSON()), 'utf8');
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(CONNECT_STATUS[e.code], { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

/**
 * The response side of a server-streaming call. The 200 and headers go out with the first
 * message; each message is written (and so flushed: no buffering, chunked encoding) on its own.
 * `send` resolves once the socket took the bytes (backpressure for producers).
 */
export class ConnectStream {
  private ended = false;
  private readonly closedCtl = new AbortController();

  constructor(private readonly res: ServerResponse) {
    res.once('close', () => this.closedCtl.abort());
  }

  /** Aborts when the client went away. */
  get signal(): AbortSignal {
    return this.closedCtl.signal;
  }

  get open(): boolean {
    return !this.ended && !this.closedCtl.signal.aborted;
  }

  private head(): void {
    if (this.res.headersSent) return;
    this.res.writeHead(200, { 'content-type': 'application/connect+json', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    this.res.flushHeaders();
  }

  async send(msg: unknown): Promise<void> {
    if (!this.open) return;
    this.head();
    const ok = this.res.write(encodeEnvelope(0, JSON.stringify(msg)));
    if (!ok) {
      await new Promise<void>((resolve) => {
        const done = () => {
          this.res.off('drain', done);
          this.res.off('close', done);
          resolve();
        };
        this.res.once('drain', done);
        this.res.once('close', done);
      });
    }
  }

  /** Ends the stream with the end-stream envelope, carrying `err` if given. Idempotent. */
  end(err?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    if (this.closedCtl.signal.aborted) return;
    this.head();
    const end = err === undefined ? {} : { error: toConnectError(err).toJSON() };
    this.res.end(encodeEnvelope(END_STREAM_FLAG, JSON.stringify(end)));
  }
}
