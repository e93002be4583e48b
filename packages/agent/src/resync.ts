// Finding a frame boundary again after the byte stream from the host went bad. On the
// virtio-serial port a host can vanish mid-frame and a new one connect without the guest
// ever seeing EOF, so the agent cannot wait for a disconnect to start over. Every new host
// begins with `hello` (re-sent every ~500 ms until answered), so the agent discards bytes
// until it finds a whole, valid `hello` request frame and restarts decoding there.

import { MAX_FRAME_BYTES, MAX_HEADER_BYTES } from '@kiln/protocol';

const MARKER = Buffer.from('{"k":"req"');

export class Resync {
  private buf: Buffer = Buffer.alloc(0);

  /**
   * Feeds bytes; returns the bytes from the start of a `hello` request frame (to hand to a
   * fresh decoder), or undefined while still searching.
   */
  push(chunk: Buffer): Buffer | undefined {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let from = 0;
    for (;;) {
      const at = this.buf.indexOf(MARKER, from + 8);
      if (at < 0) break;
      const start = at - 8;
      const verdict = helloAt(this.buf, start);
      if (verdict === 'yes') {
        const rest = this.buf.subarray(start);
        this.buf = Buffer.alloc(0);
        return rest;
      }
      if (verdict === 'more') {
        this.buf = this.buf.subarray(start); // wait for the rest of this header
        return undefined;
      }
      from = at + 1 - 8;
    }
    // Keep only a tail that may still hold the start of a hello frame (its prefix and part of its marker).
    const keep = MARKER.length + 8 - 1;
    if (this.buf.length > keep) this.buf = this.buf.subarray(this.buf.length - keep);
    return undefined;
  }
}

function helloAt(buf: Buffer, start: number): 'yes' | 'no' | 'more' {
  const len = buf.readUInt32BE(start);
  const headerLen = buf.readUInt32BE(start + 4);
  if (len > MAX_FRAME_BYTES || headerLen === 0 || headerLen > MAX_HEADER_BYTES || headerLen > len - 4) return 'no';
  if (buf.length < start + 8 + headerLen) return 'more';
  try {
    const h = JSON.parse(buf.subarray(start + 8, start + 8 + headerLen).toString('utf8')) as { k?: unknown; op?: unknown };
    return h.k === 'req' && h.op === 'hello' ? 'yes' : 'no';
  } catch {
    return 'no';
  }
}
