/**
 * The audit log writer: an append-only, hash-chained file set under `<stateDir>/audit/`.
 *
 * Durability: append() assigns the record its seq and chain position at once (so records are
 * chained in the order append() is called) and resolves only after the line has been written
 * and fdatasync'ed. Records are written in batches (group commit): one write + one fdatasync
 * covers every record appended while the previous batch was being synced. A new file is
 * fsync'ed into its directory before its first batch counts as durable.
 *
 * Failure: if a write or sync fails, the log stops (fail closed): every later append rejects
 * with AUDIT_UNAVAILABLE, and the API refuses requests, until kilnd is restarted.
 *
 * Recovery: at open, an unterminated last line (a write cut off by a crash, never
 * acknowledged) is cut off the file and an `audit`/`recovered` record notes how many bytes.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync, openSync, closeSync, fsyncSync, readFileSync, statSync, truncateSync } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { KilnError } from '../errors.js';
import { chainFileName, listChainFiles, splitLines, type ChainFile } from './files.js';
import { GENESIS_HASH, recordLine, seal, type AuditActor, type AuditInput, type AuditRecord } from './record.js';
import { parseAuditLine, type ChainHead } from './verify.js';

export interface AuditLogOptions {
  dir: string;
  /** Start a new file before one would grow past this. Default 64 MiB. */
  maxFileBytes?: number;
  /** Remove closed files whose newest record is older than this (ms); 0 keeps all. Default 0. */
  retentionMs?: number;
  /** How often retention runs (ms). Default 1 h. */
  retentionSweepMs?: number;
  logger?: Logger;
  /** The request being served, if any: fills requestId and actor of records that lack them. */
  context?: () => { requestId?: string; actor?: AuditActor } | undefined;
}

interface Pending {
  rec: AuditRecord;
  line: string;
  resolve(r: AuditRecord): void;
  reject(e: Error): void;
}

export const auditUnavailable = (cause: unknown): KilnError =>
  new KilnError('AUDIT_UNAVAILABLE', `the audit log cannot be written (${(cause as Error)?.message ?? String(cause)}); kilnd refuses requests until it is restarted`, { status: 503, cause });

export class AuditLog extends EventEmitter<{ record: [AuditRecord] }> {
  private seq = 0;
  private lastHash = GENESIS_HASH;
  private durable: ChainHead = { seq: 0, hash: GENESIS_HASH };
  private fh: FileHandle | null = null;
  private fileName: string | null = null;
  private fileBytes = 0;
  private queue: Pending[] = [];
  private flushing = false;
  private flushed: Promise<void> = Promise.resolve();
  private failure: Error | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Records made durable since open. */
  recordsWritten = 0;
  readonly maxFileBytes: number;

  private constructor(readonly o: AuditLogOptions) {
    super();
    this.setMaxListeners(0);
    this.maxFileBytes = o.maxFileBytes ?? 64 * 1024 * 1024;
  }

  static async open(o: AuditLogOptions): Promise<AuditLog> {
    const log = new AuditLog(o);
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    const truncatedBytes = log.recover();
    await log.append({ type: 'audit', data: { event: 'opened', pid: process.pid, ...(truncatedBytes ? { recoveredTornBytes: truncatedBytes } : {}) } });
    if ((o.retentionMs ?? 0) > 0) {
      await log.sweep();
      log.sweepTimer = setInterval(() => void log.sweep(), o.retentionSweepMs ?? 3_600_000);
      log.sweepTimer.unref();
    }
    return log;
  }

  get dir(): string {
    return this.o.dir;
  }

  /** The newest record that is on disk (fdatasync'ed). */
  get head(): ChainHead {
    return { ...this.durable };
  }

  get healthy(): boolean {
    return this.failure === null && !this.closed;
  }

  /** Throws AUDIT_UNAVAILABLE when the log has failed (the API checks this before acting). */
  assertWritable(): void {
    if (this.failure) throw auditUnavailable(this.failure);
  }

  /** Finds the chain head on disk; cuts off a torn last line. Returns the bytes cut. */
  private recover(): number {
    const files = listChainFiles(this.o.dir);
    const last = files.at(-1);
    if (!last) return 0;
    const text = readFileSync(last.path, 'utf8');
    const { lines, torn } = splitLines(text);
    let cut = 0;
    if (torn.length > 0) {
      cut = Buffer.byteLength(torn);
      truncateSync(last.path, Buffer.byteLength(text) - cut);
      const fd = openSync(last.path, 'r+');
      fsyncSync(fd);
      closeSync(fd);
      this.o.logger?.warn({ file: last.name, bytes: cut }, 'audit: cut an unterminated record left by a crash');
    }
    const lastLine = lines.at(-1);
    if (lastLine === undefined) {
      // An empty newest file: chain to the file before it (or to genesis).
      const prev = files.at(-2);
      if (prev) this.adoptHead(prev, splitLines(readFileSync(prev.path, 'utf8')).lines.at(-1));
      this.fileName = last.name;
      this.fileBytes = 0;
      return cut;
    }
    this.adoptHead(last, lastLine);
    this.fileName = last.name;
    this.fileBytes = statSync(last.path).size;
    return cut;
  }

  private adoptHead(file: ChainFile, line: string | undefined): void {
    const rec = line === undefined ? null : parseAuditLine(line);
    if (!rec) {
      throw new KilnError('AUDIT_CORRUPT', `the last line of ${file.path} is not an audit record; run \`kiln audit verify --dir ${this.o.dir}\`, move the damaged file aside and restart (the gap stays visible to verify)`);
    }
    this.seq = rec.seq;
    this.lastHash = rec.hash;
    this.durable = { seq: rec.seq, hash: rec.hash };
  }

  /**
   * Appends a record; resolves once it is durable. The seq and chain position are fixed
   * synchronously, in call order. Rejects with AUDIT_UNAVAILABLE if the log has failed.
   */
  append(input: AuditInput): Promise<AuditRecord> {
    if (this.failure) return Promise.reject(auditUnavailable(this.failure));
    if (this.closed) return Promise.reject(auditUnavailable(new Error('audit log closed')));
    const ctx = this.o.context?.();
    const requestId = input.requestId ?? ctx?.requestId;
    const rec = seal({
      seq: this.seq + 1,
      time: new Date().toISOString(),
      prevHash: this.lastHash,
      type: input.type,
      ...(input.sandboxId ? { sandboxId: input.sandboxId } : {}),
      ...(requestId ? { requestId } : {}),
      actor: input.actor ?? ctx?.actor ?? { kind: 'kilnd' },
      data: input.data,
    });
    const line = recordLine(rec); // throws before the chain moves if data is not plain JSON
    this.seq = rec.seq;
    this.lastHash = rec.hash;
    return new Promise<AuditRecord>((resolve, reject) => {
      this.queue.push({ rec, line, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        this.flushed = this.flush();
      }
    });
  }

  /** Writes batches until the queue is empty. `flushing` drops in the same tick the queue is seen empty. */
  private async flush(): Promise<void> {
    for (;;) {
      // Cleared in the same tick the queue is seen empty: an append made by a caller woken by
      // the last batch then starts a new flush instead of waiting on this finished one.
      if (this.queue.length === 0) {
        this.flushing = false;
        return;
      }
      const batch = this.queue.splice(0);
      try {
        const data = batch.map((p) => p.line).join('');
        const bytes = Buffer.byteLength(data);
        const firstSeq = batch[0]?.rec.seq ?? this.seq;
        if (!this.fileName || (this.fileBytes > 0 && this.fileBytes + bytes > this.maxFileBytes)) await this.startFile(firstSeq);
        else if (!this.fh) this.fh = await open(join(this.o.dir, this.fileName), 'a', 0o600);
        const fh = this.fh as FileHandle;
        await fh.appendFile(data);
        await fh.datasync();
        this.fileBytes += bytes;
      } catch (err) {
        this.failure = err as Error;
        this.o.logger?.error({ err }, 'audit log write failed; refusing requests from now on');
        const e = auditUnavailable(err);
        for (const p of [...batch, ...this.queue.splice(0)]) p.reject(e);
        this.flushing = false;
        return;
      }
      const last = batch.at(-1)?.rec;
      if (last) this.durable = { seq: last.seq, hash: last.hash };
      this.recordsWritten += batch.length;
      for (const p of batch) {
        p.resolve(p.rec);
        this.emit('record', p.rec);
      }
    }
  }

  /** Closes the current file and starts `audit-<firstSeq>.jsonl`, synced into the directory. */
  private async startFile(firstSeq: number): Promise<void> {
    await this.fh?.close();
    this.fh = null;
    this.fileName = chainFileName(firstSeq);
    this.fh = await open(join(this.o.dir, this.fileName), 'a', 0o600);
    this.fileBytes = (await this.fh.stat()).size;
    const d = await open(this.o.dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  }

  /**
   * Retention: removes the oldest closed files whose newest record is older than retentionMs.
   * Only a prefix of the chain goes, and each removal is first recorded (`audit`/`pruned`
   * with the removed file's last seq and hash), so verify can anchor the remaining chain.
   */
  async sweep(now = Date.now()): Promise<number> {
    const retentionMs = this.o.retentionMs ?? 0;
    if (retentionMs <= 0 || this.failure) return 0;
    let removed = 0;
    for (const f of listChainFiles(this.o.dir)) {
      if (f.name === this.fileName) break;
      const { lines } = splitLines(readFileSync(f.path, 'utf8'));
      const last = parseAuditLine(lines.at(-1) ?? '');
      if (!last || Date.parse(last.time) > now - retentionMs) break;
      await this.append({ type: 'audit', actor: { kind: 'kilnd' }, data: { event: 'pruned', file: f.name, firstSeq: f.firstSeq, lastSeq: last.seq, lastHash: last.hash, lastTime: last.time } });
      await rm(f.path, { force: true });
      removed++;
      this.o.logger?.info({ file: f.name, lastSeq: last.seq }, 'audit: removed a file past retention');
    }
    return removed;
  }

  async close(): Promise<void> {
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    while (this.flushing) await this.flushed;
    this.closed = true;
    await this.fh?.close();
    this.fh = null;
  }
}
