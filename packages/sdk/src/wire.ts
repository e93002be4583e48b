/** Small helpers over HttpResponse: JSON, NDJSON lines, bytes, base64 — no Node-only APIs. */
import { fromWire, KilnError } from './errors.js';
import type { HttpRequest, HttpResponse, Transport } from './transport.js';

export const enc = encodeURIComponent;

export function query(q: Record<string, string | number | boolean | undefined>): string {
  const parts = Object.entries(q)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${enc(k)}=${enc(String(v))}`);
  return parts.length ? `?${parts.join('&')}` : '';
}

export async function readText(res: HttpResponse): Promise<string> {
  const dec = new TextDecoder();
  let s = '';
  for await (const c of res.body) s += dec.decode(c, { stream: true });
  return s + dec.decode();
}

export async function readBytes(res: HttpResponse): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of res.body) {
    parts.push(c);
    n += c.length;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Sends a request; an error status becomes the KilnError kilnd named. */
export async function send(t: Transport, req: HttpRequest): Promise<HttpResponse> {
  const res = await t.request(req);
  if (res.status >= 400) throw fromWire(res.status, await readText(res));
  return res;
}

export async function call<T>(t: Transport, method: string, path: string, json?: unknown, signal?: AbortSignal): Promise<T> {
  const res = await send(t, { method, path, ...(json === undefined ? {} : { json }), ...(signal ? { signal } : {}) });
  const text = await readText(res);
  if (!text.length) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new KilnError('PROTOCOL_ERROR', `kilnd answered ${method} ${path} with something that is not JSON`, { status: res.status, cause: err });
  }
}

/** The lines of a streamed body as they arrive (without their newline). */
export async function* lines(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of body) {
    buf += dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      yield buf.slice(0, nl);
      buf = buf.slice(nl + 1);
    }
  }
  buf += dec.decode();
  if (buf) yield buf;
}

export async function* ndjson<T>(body: AsyncIterable<Uint8Array>): AsyncGenerator<T> {
  for await (const line of lines(body)) if (line.trim()) yield JSON.parse(line) as T;
}

const B64 = typeof (globalThis as { Buffer?: unknown }).Buffer === 'function' ? (globalThis as unknown as { Buffer: { from(s: string, e: string): Uint8Array } }).Buffer : null;

export function fromBase64(s: string): Uint8Array {
  if (B64) {
    const b = B64.from(s, 'base64');
    return new Uint8Array(b.buffer, b.byteOffset, b.length);
  }
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function toBase64(b: Uint8Array): string {
  if (B64) return (B64.from as unknown as (b: Uint8Array) => { toString(e: string): string })(b).toString('base64');
  let s = '';
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

/** A body given as string, bytes, a web ReadableStream or an async iterable, as an async iterable. */
export type Data = string | Uint8Array | AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>;

export function asBody(d: Data): string | Uint8Array | AsyncIterable<Uint8Array> {
  if (typeof d === 'string' || d instanceof Uint8Array) return d;
  if (Symbol.asyncIterator in d) return d;
  const stream = d;
  return (async function* () {
    const r = stream.getReader();
    for (;;) {
      const x = await r.read();
      if (x.done) return;
      yield x.value;
    }
  })();
}

export function abortError(signal: AbortSignal): Error {
  const r = signal.reason as unknown;
  return r instanceof Error ? r : Object.assign(new Error('aborted'), { name: 'AbortError' });
}

