// A background process's output: a bounded ring of chunks (stdout, stderr or pty) on one
// sequence of absolute byte offsets. Appending never blocks: past `capacity` the oldest bytes
// are overwritten, and a reader asking for them is told how many it missed (`dropped`).

export type OutputType = 'stdout' | 'stderr' | 'pty';

interface Chunk {
  type: OutputType;
  offset: number;
  buf: Buffer;
}

export interface RingRead {
  chunks: Array<{ type: OutputType; offset: number; data: Buffer }>;
  /** Bytes between the requested offset and the first one the ring still holds. */
  dropped: number;
  nextOffset: number;
}

/** Small writes of one type are merged into the last chunk up to this size (a PTY writes a byte at a time). */
const MERGE_LIMIT = 4096;

export class OutputRing {
  private chunks: Chunk[] = [];
  /** Index of the first live chunk in `chunks` (compacted now and then). */
  private head = 0;
  private startOffset = 0;
  private endOffset = 0;

  constructor(readonly capacity: number) {}

  /** Offset of the oldest byte still held (= bytes overwritten so far). */
  get start(): number {
    return this.startOffset;
  }

  /** Offset just past the newest byte (= bytes ever appended). */
  get end(): number {
    return this.endOffset;
  }

  append(type: OutputType, data: Buffer): void {
    if (data.length === 0) return;
    const last = this.chunks.length > this.head ? this.chunks[this.chunks.length - 1] : undefined;
    if (last && last.type === type && last.buf.length + data.length <= MERGE_LIMIT) {
      last.buf = Buffer.concat([last.buf, data]);
    } else {
      // Copied: the caller's buffer may be a slice of a larger pool allocation.
      this.chunks.push({ type, offset: this.endOffset, buf: Buffer.from(data) });
    }
    this.endOffset += data.length;
    this.trim();
  }

  /** Forgets everything held (the offsets stay: later reads see it all as dropped). */
  release(): void {
    this.chunks = [];
    this.head = 0;
    this.startOffset = this.endOffset;
  }

  /** Up to `maxBytes` in up to `maxChunks` chunks from `offset` (adjacent chunks of one type are merged). */
  read(offset: number, maxBytes: number, maxChunks: number): RingRead {
    const dropped = offset < this.startOffset ? this.startOffset - offset : 0;
    let at = Math.min(Math.max(offset, this.startOffset), this.endOffset);
    const out: RingRead['chunks'] = [];
    let bytes = 0;
    for (let i = this.find(at); i < this.chunks.length && bytes < maxBytes; i++) {
      const c = this.chunks[i] as Chunk;
      const from = at - c.offset;
      const take = Math.min(c.buf.length - from, maxBytes - bytes);
      const piece = c.buf.subarray(from, from + take);
      const prev = out[out.length - 1];
      if (prev && prev.type === c.type) prev.data = Buffer.concat([prev.data, piece]);
      else if (out.length >= maxChunks) break;
      else out.push({ type: c.type, offset: at, data: piece });
      at += take;
      bytes += take;
    }
    return { chunks: out, dropped, nextOffset: at };
  }

  /** Index of the chunk holding `offset` (or chunks.length at the end). */
  private find(offset: number): number {
    let lo = this.head;
    let hi = this.chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.chunks[mid] as Chunk;
      if (c.offset + c.buf.length <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  private trim(): void {
    while (this.endOffset - this.startOffset > this.capacity) {
      const c = this.chunks[this.head] as Chunk;
      const excess = this.endOffset - this.startOffset - this.capacity;
      if (excess >= c.buf.length) {
        this.head++;
        this.startOffset = c.offset + c.buf.length;
      } else {
        c.buf = c.buf.subarray(excess);
        c.offset += excess;
        this.startOffset = c.offset;
      }
    }
    if (this.head > 64 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head);
      this.head = 0;
    }
  }
}
