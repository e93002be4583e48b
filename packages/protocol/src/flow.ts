// Per-stream flow control. A sender keeps at most `windowBytes` unacknowledged bytes in
// flight per stream and queues the rest; the receiver acks bytes as it consumes them. One
// slow consumer therefore stalls only its own stream, and memory on both ends stays bounded.

import { EventEmitter } from 'node:events';
import { ProtocolError } from './errors.js';
import { MAX_BODY_BYTES } from './frame.js';

export const DEFAULT_WINDOW_BYTES = 1024 * 1024;

/**
 * Sending half of one stream. `sendChunk(body)` must put one `data` frame on the wire,
 * `sendEnd()` one `end` frame. Emits 'drain' when everything queued has been sent.
 */
export class StreamSender extends EventEmitter {
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private unacked = 0;
  private ending = false;
  private finished = false;

  constructor(
    private readonly sendChunk: (body: Buffer) => void,
    private readonly sendEnd: () => void,
    readonly windowBytes: number = DEFAULT_WINDOW_BYTES,
  ) {
    super();
  }

  /** Bytes accepted by `write` but not yet sent. */
  get queued(): number {
    return this.queuedBytes;
  }

  /** Queues `buf`; returns true if it was all sent at once, false if the caller should wait for 'drain'. */
  write(buf: Buffer): boolean {
    if (this.ending || this.finished) return false;
    if (buf.length > 0) {
      this.queue.push(buf);
      this.queuedBytes += buf.length;
      this.flush();
    }
    return this.queuedBytes === 0;
  }

  /** Resolves once the queue is empty (or the sender was destroyed). */
  drained(): Promise<void> {
    if (this.queuedBytes === 0 || this.finished) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.off('drain', done);
        this.off('destroyed', done);
        resolve();
      };
      this.on('drain', done);
      this.on('destroyed', done);
    });
  }

  /** Sends `end` after everything queued. */
  end(): void {
    if (this.ending || this.finished) return;
    this.ending = true;
    this.flush();
  }

  /** The receiver consumed `n` bytes. Acking more than is in flight is a protocol violation. */
  ack(n: number): void {
    if (this.finished && this.unacked === 0) return;
    if (n > this.unacked) {
      throw new ProtocolError('PROTOCOL_ERROR', `ack of ${n} bytes exceeds the ${this.unacked} in flight`);
    }
    this.unacked -= n;
    this.flush();
  }

  /** Drops everything queued; nothing more is sent. */
  destroy(): void {
    if (this.finished) return;
    this.finished = true;
    this.queue = [];
    this.queuedBytes = 0;
    this.emit('destroyed');
  }

  get isFinished(): boolean {
    return this.finished;
  }

  private flush(): void {
    if (this.finished) return;
    while (this.queue.length > 0 && this.unacked < this.windowBytes) {
      const head = this.queue[0] as Buffer;
      const n = Math.min(head.length, this.windowBytes - this.unacked, MAX_BODY_BYTES);
      const chunk = n === head.length ? head : head.subarray(0, n);
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
      this.queuedBytes -= n;
      this.unacked += n;
      this.sendChunk(chunk);
      if (this.finished) return;
    }
    if (this.queuedBytes === 0) {
      if (this.ending) {
        this.finished = true;
        this.sendEnd();
      }
      this.emit('drain');
    }
  }
}

/** Receiving half of one stream: enforces the window the sender must respect. */
export class StreamReceiver {
  private unacked = 0;

  constructor(
    private readonly sendAck: (n: number) => void,
    readonly windowBytes: number = DEFAULT_WINDOW_BYTES,
  ) {}

  /** Accounts for received bytes; throws ProtocolError if the sender overran the window. */
  received(n: number): void {
    this.unacked += n;
    if (this.unacked > this.windowBytes) {
      throw new ProtocolError('PROTOCOL_ERROR', `peer overran the flow-control window (${this.unacked} > ${this.windowBytes})`);
    }
  }

  /** Acks `n` consumed bytes. */
  consumed(n: number): void {
    if (n <= 0) return;
    this.unacked -= n;
    this.sendAck(n);
  }
}
