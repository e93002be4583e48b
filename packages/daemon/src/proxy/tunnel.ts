/**
 * A TCP connection into the guest (the agent's tcp.connect) as a Node Duplex, so that
 * node:http's client can speak HTTP over it (`createConnection`) and an upgraded socket can be
 * piped to it. Backpressure both ways: a write resolves only inside the agent's window, and
 * guest bytes are acked only once this stream's reader took them (push() returned true or
 * _read was called again), so a slow client stops the guest socket instead of buffering.
 */
import { Duplex } from 'node:stream';
import type { TcpHandle } from '@kiln/protocol';

export type OpenTcp = (port: number, handlers: { onData(b: Buffer): void | Promise<void>; onEnd(): void }) => TcpHandle;

export class GuestSocket extends Duplex {
  private handle: TcpHandle;
  private waiting: (() => void) | null = null;
  bytesIn = 0;
  bytesOut = 0;
  /** Set once the agent refused or lost the connection (its AgentError code). */
  failure: string | null = null;

  constructor(open: OpenTcp, port: number, private readonly onActivity: () => void = () => undefined) {
    super({ allowHalfOpen: true, highWaterMark: 64 * 1024 });
    this.handle = open(port, {
      onData: (b) => {
        this.bytesOut += b.length;
        this.onActivity();
        if (this.push(b)) return;
        return new Promise<void>((resolve) => (this.waiting = resolve));
      },
      onEnd: () => this.push(null),
    });
    this.handle.result.then(
      () => {
        this.push(null);
        if (this.writableFinished || this.writableEnded) this.destroy();
      },
      (err: { code?: string; message?: string }) => {
        this.failure = err.code ?? 'INTERNAL';
        this.destroy(Object.assign(new Error(err.message ?? 'guest connection failed'), { code: this.failure }));
      },
    );
  }

  override _read(): void {
    const w = this.waiting;
    this.waiting = null;
    w?.();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytesIn += chunk.length;
    this.onActivity();
    this.handle.write(chunk).then(() => cb(), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.handle.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.handle.close();
    const w = this.waiting;
    this.waiting = null;
    w?.();
    cb(err);
  }

  // What node:http's client asks of a socket.
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}
