/**
 * A minimal QMP (QEMU Machine Protocol) client. Written by hand: QMP is line-delimited JSON
 * with a greeting and a capabilities handshake, and no maintained npm package covers it with
 * the hostile-peer limits we want (line cap, timeouts, one connection per VM).
 */
import { EventEmitter } from 'node:events';
import { createConnection, type Socket } from 'node:net';
import { KilnError } from '../errors.js';
import { sleep } from '../util/proc.js';

const MAX_LINE_BYTES = 1024 * 1024;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class QmpClient extends EventEmitter {
  private buf = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private closed = false;

  private constructor(private readonly socket: Socket) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.shutdown(err));
    socket.on('close', () => this.shutdown(new Error('QMP connection closed')));
  }

  /** Connects, reads the greeting and negotiates capabilities. */
  static async connect(path: string, timeoutMs = 5000): Promise<QmpClient> {
    const socket = createConnection(path);
    return await new Promise<QmpClient>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new KilnError('QMP_TIMEOUT', `no QMP greeting on ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new KilnError('QMP_CONNECT_FAILED', `cannot connect to QMP socket ${path}: ${err.message}`, { cause: err }));
      });
      socket.once('connect', () => {
        const client = new QmpClient(socket);
        client.once('greeting', () => {
          client
            .execute('qmp_capabilities')
            .then(() => {
              clearTimeout(timer);
              resolve(client);
            })
            .catch((err: Error) => {
              clearTimeout(timer);
              client.close();
              reject(err);
            });
        });
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<T> {
    if (this.closed) return Promise.reject(new KilnError('QMP_CLOSED', `QMP connection closed before ${command}`));
    const id = `k${this.nextId++}`;
    const msg = args === undefined ? { execute: command, id } : { execute: command, arguments: args, id };
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new KilnError('QMP_TIMEOUT', `QMP command ${command} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.write(JSON.stringify(msg) + '\n');
    });
  }

  close(): void {
    this.socket.destroy();
    this.shutdown(new Error('QMP connection closed by host'));
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    if (this.buf.length > MAX_LINE_BYTES && !this.buf.includes('\n')) {
      this.socket.destroy();
      this.shutdown(new KilnError('QMP_PROTOCOL', 'QMP line exceeds limit'));
      return;
    }
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (line.length === 0) continue;
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      this.onMessage(msg);
    }
  }

  private onMessage(msg: Record<string, unknown>): void {
    if ('QMP' in msg) {
      this.emit('greeting', msg.QMP);
      return;
    }
    if (typeof msg.event === 'string') {
      this.emit('event', msg.event, msg.data);
      return;
    }
    const id = typeof msg.id === 'string' ? msg.id : undefined;
    if (id === undefined) return;
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if ('error' in msg) {
      const e = msg.error as { class?: string; desc?: string };
      p.reject(new KilnError('QMP_ERROR', `QMP error ${e.class ?? ''}: ${e.desc ?? 'unknown'}`));
    } else {
      p.resolve(msg.return);
    }
  }

  private shutdown(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new KilnError('QMP_CLOSED', err.message, { cause: err }));
    }
    this.pending.clear();
    this.emit('close', err);
  }
}

/** Polls query-migrate until the migration completes; throws on failure or timeout. */
export async function waitMigration(q: QmpClient, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const st = await q.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
    if (st.status === 'completed') return;
    if (st.status === 'failed' || st.status === 'cancelled') {
      throw new KilnError('VMM_MIGRATION_FAILED', `${what} migration ${st.status}: ${st['error-desc'] ?? 'no reason given'}`);
    }
    await sleep(st.status === undefined || st.status === 'none' ? 5 : 10);
  }
  throw new KilnError('VMM_MIGRATION_TIMEOUT', `${what} did not complete within ${timeoutMs} ms`);
}
