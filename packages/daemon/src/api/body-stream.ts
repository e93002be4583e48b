/**
 * Streamed response bodies with backpressure, end to end: HTTP client ← kilnd ← producer.
 *
 * A `BodyStream` is the Readable a route hands to `reply.send()`. fastify pipes it into the
 * response, and pipe() stops pulling from it while the response cannot take more (the client
 * is not reading: the socket is full). A producer never writes past that: `write()` resolves
 * only once the body is below its high-water mark again, which happens only after the HTTP
 * response drained. Producers turn that promise into credit for their own source:
 *  - exec: the agent handler returns it, and the agent client acks the guest's bytes only when
 *    it settles, so the guest agent runs out of window, stops reading the command's pipe, and
 *    the command blocks in write(2);
 *  - downloads, stored logs, events and audit records: `bodyFrom()` asks its source for the
 *    next item only after the previous one was taken.
 * kilnd therefore holds, per stream, at most the body's high-water mark plus what the producer
 * had in flight (one page of records, or the guest protocol's window), whatever the client does.
 *
 * When the client goes away the body is destroyed: `signal` aborts (followers stop waiting),
 * pending writes resolve (so credit is never withheld from a stream nobody reads any more),
 * and later writes are dropped.
 */
import type { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';

/** Default high-water mark of a body: 64 KiB. */
export const BODY_HIGH_WATER_MARK = 64 * 1024;

export class BodyStream extends Readable {
  private readonly abort = new AbortController();
  private waiters: Array<() => void> = [];
  private ending = false;

  constructor(highWaterMark = BODY_HIGH_WATER_MARK) {
    super({ highWaterMark });
  }

  /** Aborted once the body is finished or destroyed (the client left, or the route failed it). */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** True once nothing more will be sent: ended or destroyed. */
  get done(): boolean {
    return this.ending || this.destroyed;
  }

  /**
   * Queues `chunk`; resolves when the body can take more (at once while below its high-water
   * mark, else when the response drained and pulled again) or when the body is gone.
   */
  write(chunk: string | Buffer): Promise<void> {
    if (this.done) return Promise.resolve();
    if (this.push(chunk)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** No more chunks: the response ends once the client read what is queued. */
  end(): void {
    if (this.done) return;
    this.ending = true;
    this.push(null);
    this.abort.abort(new Error('response body ended'));
    this.wake();
  }

  override _read(): void {
    this.wake();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.abort.abort(err ?? new Error('response body closed'));
    this.wake();
    cb(err);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }
}

/**
 * A body fed from `source`, pulled one item at a time: the next item is asked for only after
 * the previous one was taken by the response. The source sees `signal` abort when the client
 * leaves (a follower waiting for news must stop waiting on it). A source that throws ends
 * the body with `onError`'s last words, if any (headers are long gone by then).
 */
export function bodyFrom(
  source: (signal: AbortSignal) => AsyncIterable<string | Buffer>,
  opts: { onError?: (err: unknown) => string | undefined; highWaterMark?: number } = {},
): BodyStream {
  const body = new BodyStream(opts.highWaterMark);
  void (async () => {
    try {
      for await (const chunk of source(body.signal)) {
        if (body.done) break;
        await body.write(chunk);
      }
    } catch (err) {
      if (body.done) return;
      const last = opts.onError?.(err);
      if (last !== undefined) await body.write(last);
      else body.destroy(err instanceof Error ? err : new Error(String(err)));
    }
    body.end();
  })();
  return body;
}

/**
 * Sends `body` as the reply. With `flushHeaders`, the status and headers leave as soon as the
 * body is piped, before its first chunk (a follower then sees 200 before the first news).
 */
export function sendBody(reply: FastifyReply, body: Readable, contentType: string, opts: { flushHeaders?: boolean } = {}): FastifyReply {
  if (opts.flushHeaders) reply.raw.once('pipe', () => reply.raw.flushHeaders());
  return reply.type(contentType).header('cache-control', 'no-store').send(body);
}

/** Resolves on the next `event` of `emitter` or when `signal` aborts, and leaves no listener behind. */
export function nextEvent(emitter: EventEmitter, event: string, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      emitter.off(event, done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    emitter.on(event, done);
    signal.addEventListener('abort', done, { once: true });
  });
}
