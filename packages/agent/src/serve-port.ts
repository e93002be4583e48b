// Serving the virtio-serial port. Such a port can be opened only once, reads return EOF
// while the host side is disconnected, and Node cannot wrap a non-tty char device in a
// net.Socket, so this drives the fd with plain fs reads and writes (each blocking one
// libuv pool thread while it waits) and reopens the port after every EOF.

import { close, open, read, write } from 'node:fs';
import { promisify } from 'node:util';
import { errorFields, log } from './log.js';
import type { AgentConfig } from './ops/index.js';
import { Session, type Transport } from './session.js';

const REOPEN_DELAY_MS = 50;
/**
 * While no host is connected every open reads EOF at once: the delay doubles up to this, so a
 * guest left alone (kilnd stopped) does not spin — under TCG a 50 ms reopen loop cost an idle
 * guest ~19 % of a host core. A host that connects is served within this long.
 */
const MAX_REOPEN_DELAY_MS = 1000;
const READ_BUFFER_BYTES = 512 * 1024;

const openP = promisify(open);
const readP = promisify(read);
const writeP = promisify(write);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Writes frames to the fd one at a time (concurrent writes from pool threads could
 * interleave), handling short writes. `shutdown` drops what is queued and closes the fd
 * only once no write is in flight: a write blocked while the host is away must not end up
 * on a reused fd number.
 */
class FdTransport implements Transport {
  private queue: Buffer[] = [];
  private writing = false;
  private stopped = false;
  private closed = false;

  constructor(private readonly fd: number) {}

  write(frame: Buffer): void {
    if (this.stopped) return;
    this.queue.push(frame);
    if (!this.writing) void this.drain();
  }

  shutdown(): void {
    this.stopped = true;
    this.queue = [];
    if (!this.writing) this.closeFd();
  }

  private async drain(): Promise<void> {
    this.writing = true;
    try {
      while (this.queue.length > 0 && !this.stopped) {
        const frame = this.queue.shift() as Buffer;
        let off = 0;
        while (off < frame.length) {
          const { bytesWritten } = await writeP(this.fd, frame, off, frame.length - off, null);
          off += bytesWritten;
        }
      }
    } catch (err) {
      log('warn', 'write to port failed', errorFields(err));
      this.stopped = true;
      this.queue = [];
    } finally {
      this.writing = false;
      if (this.stopped) this.closeFd();
    }
  }

  private closeFd(): void {
    if (this.closed) return;
    this.closed = true;
    close(this.fd, () => undefined);
  }
}

/** Serves one open of the port until EOF or an error; whether the host sent anything. */
async function serveOnce(fd: number, config: AgentConfig): Promise<boolean> {
  const transport = new FdTransport(fd);
  // A new host may replace the old one without this read ever seeing EOF, so bad input
  // resynchronises on the next hello instead of waiting for a disconnect.
  const session = new Session(transport, config, { onBadInput: 'resync' });
  // One large reusable buffer: a whole max-size frame fits in one read (each read is a
  // pool round trip), and only the bytes actually read are copied out.
  const buf = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  let served = false;
  try {
    for (;;) {
      const { bytesRead } = await readP(fd, buf, 0, buf.length, null);
      if (bytesRead === 0) return served; // host disconnected
      served = true;
      session.push(Buffer.from(buf.subarray(0, bytesRead)));
    }
  } catch (err) {
    log('warn', 'read from port failed', errorFields(err));
    return served;
  } finally {
    session.dispose();
    transport.shutdown();
  }
}

/** Serves the port forever: open, serve, reopen after EOF. */
export async function servePort(path: string, config: AgentConfig): Promise<never> {
  let lastError = '';
  let reopenDelayMs = REOPEN_DELAY_MS;
  for (;;) {
    let fd: number;
    try {
      fd = await openP(path, 'r+');
    } catch (err) {
      const code = String((err as { code?: unknown }).code);
      if (code !== lastError) log('warn', 'cannot open port, retrying', { path, ...errorFields(err) });
      lastError = code;
      await sleep(code === 'EBUSY' ? REOPEN_DELAY_MS : 500);
      continue;
    }
    lastError = '';
    reopenDelayMs = (await serveOnce(fd, config)) ? REOPEN_DELAY_MS : Math.min(reopenDelayMs * 2, MAX_REOPEN_DELAY_MS);
    await sleep(reopenDelayMs);
  }
}
