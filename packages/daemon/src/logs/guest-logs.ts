/**
 * Guest logs of every sandbox: a store + a collector per live VM, reading and following
 * stored lines (also after the sandbox is gone), and retention of destroyed sandboxes' logs.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { isSandboxId } from '../sandbox/ids.js';
import { LogCollector, type CollectorPaths } from './collector.js';
import { readMeta, readStoredLines, removeLogDir, SandboxLogStore, type LogLine, type LogService } from './store.js';

export interface GuestLogsOptions {
  /** `<stateDir>/logs`. */
  dir: string;
  /** Stored bytes per sandbox (all services together). Default 16 MiB. */
  maxBytesPerSandbox?: number;
  /** Keep a destroyed sandbox's logs this long (ms). Default 7 days. */
  retentionMs?: number;
  /** Bytes per second read from the service-log channel. Default 64 KiB/s. */
  rateBytesPerSec?: number;
  /** Bytes per second read from the serial console. Default 8 KiB/s. */
  consoleRateBytesPerSec?: number;
  logger?: Logger;
  /** Called with the bytes a store drops (metrics). */
  onDropped?: (sandboxId: string, bytes: number) => void;
}

interface Entry {
  store: SandboxLogStore;
  collector: LogCollector | null;
}

export class GuestLogs {
  private readonly live = new Map<string, Entry>();
  private sweepTimer: NodeJS.Timeout | null = null;
  readonly maxBytes: number;
  readonly retentionMs: number;

  constructor(private readonly o: GuestLogsOptions) {
    this.maxBytes = o.maxBytesPerSandbox ?? 16 * 1024 * 1024;
    this.retentionMs = o.retentionMs ?? 7 * 24 * 3600 * 1000;
  }

  dirOf(id: string): string {
    return join(this.o.dir, id);
  }

  private entry(id: string): Entry {
    let e = this.live.get(id);
    if (!e) {
      const store = new SandboxLogStore(this.dirOf(id), this.maxBytes);
      store.on('dropped', (n) => this.o.onDropped?.(id, n));
      e = { store, collector: null };
      this.live.set(id, e);
    }
    return e;
  }

  /** Starts collecting a VM's console and service logs (new VM, retried boot, or adopted). */
  attach(id: string, paths: CollectorPaths): void {
    const e = this.entry(id);
    e.collector?.stop();
    e.collector = new LogCollector(e.store, paths, undefined, this.o.rateBytesPerSec, this.o.consoleRateBytesPerSec);
    e.collector.start();
  }

  /** Stops collecting; the stored logs stay (retention counts from now when destroyed). */
  detach(id: string, opts: { destroyed?: boolean } = {}): void {
    const e = this.live.get(id);
    if (!e) {
      if (opts.destroyed && existsSync(this.dirOf(id))) new SandboxLogStore(this.dirOf(id), this.maxBytes).close({ destroyed: true });
      return;
    }
    e.collector?.stop();
    e.store.close(opts);
    this.live.delete(id);
  }

  has(id: string): boolean {
    return isSandboxId(id) && (this.live.has(id) || existsSync(this.dirOf(id)));
  }

  isLive(id: string): boolean {
    return this.live.has(id);
  }

  /** Stored lines, oldest first (pending ones are flushed first). */
  read(id: string): LogLine[] {
    this.live.get(id)?.store.flush();
    return readStoredLines(this.dirOf(id));
  }

  /** Opens a sandbox's store without collecting yet (so a follower can wait for its boot). */
  open(id: string): void {
    this.entry(id);
  }

  /** Calls onLine for each new line until the returned function is called or the sandbox's logs close (then onEnd). */
  follow(id: string, onLine: (l: LogLine) => void, onEnd: () => void): () => void {
    const store = this.live.get(id)?.store;
    if (!store) {
      onEnd();
      return () => undefined;
    }
    store.on('line', onLine);
    store.once('closed', onEnd);
    return () => {
      store.off('line', onLine);
      store.off('closed', onEnd);
    };
  }

  stats(id: string): { storedBytes: number; droppedBytes: number; bytesIn: number } | null {
    const e = this.live.get(id);
    if (e) return { storedBytes: e.store.storedBytes(), droppedBytes: e.store.meta.droppedBytes, bytesIn: e.store.bytesIn };
    if (!existsSync(this.dirOf(id))) return null;
    return { storedBytes: 0, droppedBytes: readMeta(this.dirOf(id)).droppedBytes, bytesIn: 0 };
  }

  /** Removes logs of sandboxes destroyed more than retentionMs ago; `known` ids are kept. */
  sweep(known: ReadonlySet<string>, now = Date.now()): string[] {
    const removed: string[] = [];
    if (!existsSync(this.o.dir)) return removed;
    for (const name of readdirSync(this.o.dir)) {
      if (!isSandboxId(name) || this.live.has(name) || known.has(name)) continue;
      const meta = readMeta(join(this.o.dir, name));
      // A dir without a destroy time belongs to a sandbox that vanished while kilnd was down: retain from now.
      if (meta.destroyedAt === null) {
        new SandboxLogStore(this.dirOf(name), this.maxBytes).close({ destroyed: true });
        continue;
      }
      if (meta.destroyedAt <= now - this.retentionMs) {
        removeLogDir(join(this.o.dir, name));
        removed.push(name);
      }
    }
    if (removed.length) this.o.logger?.info({ removed }, 'guest logs past retention removed');
    return removed;
  }

  startSweeping(known: () => ReadonlySet<string>, everyMs = 3_600_000): void {
    this.sweep(known());
    this.sweepTimer = setInterval(() => this.sweep(known()), everyMs);
    this.sweepTimer.unref();
  }

  close(): void {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    for (const [id, e] of this.live) {
      e.collector?.stop();
      e.store.close();
      this.live.delete(id);
    }
  }
}

export type { LogLine, LogService };
