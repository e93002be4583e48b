// Receiving side of one host→agent stream (exec stdin, file upload): buffers data frames
// until the op reads them, and acks bytes only once the op has consumed them, so the host's
// window bounds what is buffered here.

import { AgentError, StreamReceiver } from '@kiln/protocol';

export class Inbox {
  private chunks: Buffer[] = [];
  private ended = false;
  private failure: Error | undefined;
  private wake: (() => void) | undefined;
  private readonly receiver: StreamReceiver;

  constructor(sendAck: (n: number) => void, windowBytes: number) {
    this.receiver = new StreamReceiver(sendAck, windowBytes);
  }

  /** Throws ProtocolError if the host overran the window. Data after `end` is ignored. */
  push(b: Buffer): void {
    if (this.ended || this.failure) return;
    this.receiver.received(b.length);
    this.chunks.push(b);
    this.notify();
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  /** Makes pending and later reads reject with `err`. */
  fail(err: Error): void {
    this.failure ??= err;
    this.chunks = [];
    this.notify();
  }

  /** Next chunk, or null at the end of the stream. The caller must `ack` what it consumed. */
  async read(): Promise<Buffer | null> {
    for (;;) {
      if (this.failure) throw this.failure;
      const next = this.chunks.shift();
      if (next) return next;
      if (this.ended) return null;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  ack(n: number): void {
    if (!this.failure) this.receiver.consumed(n);
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

export const cancelled = (what: string): AgentError => new AgentError('CANCELLED', `${what} cancelled`);
