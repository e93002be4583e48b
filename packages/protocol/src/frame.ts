// Length-prefixed binary framing. Hand-written rather than a dependency: it is ~100 lines,
// must be binary-safe (no base64) and must treat every byte as hostile, with hard caps.
//
// Frame layout:  u32 BE len | u32 BE headerLen | header (UTF-8 JSON object) | body (raw bytes)
// `len` counts every byte after itself: 4 + headerLen + body.length.

import { ProtocolError } from './errors.js';

export const PROTOCOL_VERSION = 1;
/** Largest JSON header accepted (64 KiB). */
export const MAX_HEADER_BYTES = 64 * 1024;
/** Largest body accepted in one frame (256 KiB). Larger payloads are split into many `data` frames. */
export const MAX_BODY_BYTES = 256 * 1024;
/** Largest value of the `len` field. */
export const MAX_FRAME_BYTES = 4 + MAX_HEADER_BYTES + MAX_BODY_BYTES;

export interface Frame {
  /** A parsed JSON object; not yet schema-checked (see `checkHeader`). */
  header: Record<string, unknown>;
  body: Buffer;
}

const EMPTY = Buffer.alloc(0);

/** Encodes one frame. Throws ProtocolError if the header or body exceeds its cap. */
export function encodeFrame(header: object, body: Buffer = EMPTY): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  if (json.length > MAX_HEADER_BYTES) {
    throw new ProtocolError('FRAME_TOO_LARGE', `header of ${json.length} bytes exceeds ${MAX_HEADER_BYTES}`);
  }
  if (body.length > MAX_BODY_BYTES) {
    throw new ProtocolError('FRAME_TOO_LARGE', `body of ${body.length} bytes exceeds ${MAX_BODY_BYTES}`);
  }
  const prefix = Buffer.allocUnsafe(8);
  prefix.writeUInt32BE(4 + json.length + body.length, 0);
  prefix.writeUInt32BE(json.length, 4);
  return body.length > 0 ? Buffer.concat([prefix, json, body]) : Buffer.concat([prefix, json]);
}

/**
 * Incremental decoder: feed it chunks as they arrive (split or merged arbitrarily), get
 * whole frames back. The first invalid byte makes it throw a ProtocolError, and every
 * later `push` throws the same error: a byte stream cannot be resynchronised.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private failed: ProtocolError | undefined;

  /** Bytes held waiting for the rest of a frame (at most MAX_FRAME_BYTES + 4 + one chunk). */
  get bufferedBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): Frame[] {
    if (this.failed) throw this.failed;
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    try {
      for (;;) {
        const frame = this.next();
        if (!frame) break;
        frames.push(frame);
      }
    } catch (err) {
      this.failed = err as ProtocolError;
      this.chunks = [];
      this.buffered = 0;
      throw err;
    }
    return frames;
  }

  private next(): Frame | undefined {
    if (this.buffered < 8) return undefined;
    const prefix = this.peek(8);
    const len = prefix.readUInt32BE(0);
    const headerLen = prefix.readUInt32BE(4);
    // Validate the prefix before waiting for the rest, so an oversize claim fails at once
    // instead of making us buffer it.
    if (len > MAX_FRAME_BYTES) {
      throw new ProtocolError('FRAME_TOO_LARGE', `frame of ${len} bytes exceeds ${MAX_FRAME_BYTES}`);
    }
    if (len < 4 || headerLen > len - 4) {
      throw new ProtocolError('MALFORMED_FRAME', `header length ${headerLen} does not fit frame length ${len}`);
    }
    if (headerLen > MAX_HEADER_BYTES) {
      throw new ProtocolError('FRAME_TOO_LARGE', `header of ${headerLen} bytes exceeds ${MAX_HEADER_BYTES}`);
    }
    if (len - 4 - headerLen > MAX_BODY_BYTES) {
      throw new ProtocolError('FRAME_TOO_LARGE', `body of ${len - 4 - headerLen} bytes exceeds ${MAX_BODY_BYTES}`);
    }
    if (headerLen === 0) throw new ProtocolError('MALFORMED_HEADER', 'empty header');
    if (this.buffered < 4 + len) return undefined;
    const raw = this.take(4 + len);
    const header = parseHeader(raw.subarray(8, 8 + headerLen));
    // Copy the body out so a frame never pins a larger merged chunk in memory.
    const body = len - 4 - headerLen > 0 ? Buffer.from(raw.subarray(8 + headerLen)) : EMPTY;
    return { header, body };
  }

  private peek(n: number): Buffer {
    // Merge just enough leading chunks to hold n bytes (keeps the merge for next time).
    let have = 0;
    let k = 0;
    while (have < n) have += (this.chunks[k++] as Buffer).length;
    if (k > 1) this.chunks.splice(0, k, Buffer.concat(this.chunks.slice(0, k)));
    return (this.chunks[0] as Buffer).subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return all.subarray(0, n);
  }
}

const decoder = new TextDecoder('utf-8', { fatal: true });

function parseHeader(bytes: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(bytes));
  } catch (err) {
    throw new ProtocolError('MALFORMED_HEADER', 'header is not valid UTF-8 JSON', { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ProtocolError('MALFORMED_HEADER', 'header is not a JSON object');
  }
  return value as Record<string, unknown>;
}
