/**
 * One sandbox's stored guest logs: `<stateDir>/logs/<id>/` (outside the run directory, so they
 * outlive the sandbox). Every line is `<ISO time> <service> <text>\n`; services are `console`
 * (the serial console), `dockerd` and `agent` (forwarded by the guest over org.kiln.logs).
 *
 * The cap: stored bytes never exceed `maxBytes`. Lines go to `current.log`; when it would pass
 * maxBytes/2 it becomes `previous.log` (the old previous is deleted), so the newest
 * ≥ maxBytes/2 are always kept. Bytes deleted that way, and lines dropped because the disk
 * could not keep up, are counted in `droppedBytes` (persisted in meta.json).
 */
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const LOG_SERVICES = ['console', 'dockerd', 'agent'] as const;
export type LogService = (typeof LOG_SERVICES)[number];

export interface LogLine {
  time: string;
  service: LogService;
  text: string;
}

export interface LogMeta {
  droppedBytes: number;
  /** Set when the sandbox was destroyed; retention counts from here. */
  destroyedAt: number | null;
}

/** Lines waiting for the disk beyond this are dropped (and counted). */
const MAX_PENDING_BYTES = 1024 * 1024;

export const formatLine = (l: LogLine): string => `${l.time} ${l.service} ${l.text}\n`;

export function parseLine(s: string): LogLine | null {
  const a = s.indexOf(' ');
  const b = a < 0 ? -1 : s.indexOf(' ', a + 1);
  if (b < 0) return null;
  const service = s.slice(a + 1, b) as LogService;
  if (!LOG_SERVICES.includes(service)) return null;
  return { time: s.slice(0, a), service, text: s.slice(b + 1) };
}

export class SandboxLogStore extends EventEmitter<{ line: [LogLine]; dropped: [number]; closed: [] }> {
  private fd: number | null = null;
  private currentBytes = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  readonly meta: LogMeta;
  /** Bytes of lines accepted since open (stored or later rotated away). */
  bytesIn = 0;

  constructor(
    readonly dir: string,
    readonly maxBytes: number,
    private readonly flushMs = 100,
  ) {
    super();
    this.setMaxListeners(0);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.meta = readMeta(dir);
    this.meta.destroyedAt = null;
    const cur = join(dir, 'current.log');
    this.currentBytes = existsSync(cur) ? statSync(cur).size : 0;
  }

  get half(): number {
    return Math.max(1024, Math.floor(this.maxBytes / 2));
  }

  append(service: LogService, text: string, time = new Date()): void {
    const line: LogLine = { time: time.toISOString(), service, text };
    const s = formatLine(line);
    const n = Buffer.byteLength(s);
    if (this.pendingBytes + n > MAX_PENDING_BYTES) {
      this.drop(n);
      return;
    }
    this.bytesIn += n;
    this.pending.push(s);
    this.pendingBytes += n;
    this.emit('line', line);
    this.timer ??= setTimeout(() => this.flush(), this.flushMs);
  }

  private drop(n: number): void {
    this.meta.droppedBytes += n;
    this.emit('dropped', n);
  }

  /** Writes pending lines, rotating so that stored bytes stay ≤ maxBytes. */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const cur = join(this.dir, 'current.log');
    let rotated = false;
    for (const s of this.pending) {
      const n = Buffer.byteLength(s);
      if (this.currentBytes + n > this.half && this.currentBytes > 0) {
        this.rotate();
        rotated = true;
      }
      if (n > this.half) {
        this.drop(n); // cannot happen with MAX_LINE_BYTES ≪ half, but never exceed the cap
        continue;
      }
      this.fd ??= openSync(cur, 'a', 0o600);
      writeSync(this.fd, s);
      this.currentBytes += n;
    }
    this.pending = [];
    this.pendingBytes = 0;
    if (rotated) this.saveMeta();
  }

  private rotate(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    const prev = join(this.dir, 'previous.log');
    if (existsSync(prev)) this.drop(statSync(prev).size);
    renameSync(join(this.dir, 'current.log'), prev);
    this.currentBytes = 0;
  }

  /** Bytes on disk now (both segments). */
  storedBytes(): number {
    return sizeOf(join(this.dir, 'previous.log')) + sizeOf(join(this.dir, 'current.log'));
  }

  saveMeta(): void {
    writeFileSync(join(this.dir, 'meta.json'), JSON.stringify(this.meta) + '\n', { mode: 0o600 });
  }

  close(opts: { destroyed?: boolean } = {}): void {
    this.flush();
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    if (opts.destroyed) this.meta.destroyedAt = Date.now();
    this.saveMeta();
    this.emit('closed');
    this.removeAllListeners();
  }
}

const sizeOf = (p: string): number => {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
};

export function readMeta(dir: string): LogMeta {
  try {
    const m = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as Partial<LogMeta>;
    return { droppedBytes: Number(m.droppedBytes) || 0, destroyedAt: typeof m.destroyedAt === 'number' ? m.destroyedAt : null };
  } catch {
    return { droppedBytes: 0, destroyedAt: null };
  }
}

/** Stored lines of a sandbox's log dir, oldest first (previous.log then current.log). */
export function readStoredLines(dir: string): LogLine[] {
  const out: LogLine[] = [];
  for (const name of ['previous.log', 'current.log']) {
    let text: string;
    try {
      text = readFileSync(join(dir, name), 'utf8');
    } catch {
      continue;
    }
    for (const s of text.split('\n')) {
      const l = s ? parseLine(s) : null;
      if (l) out.push(l);
    }
  }
  return out;
}

export function removeLogDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
