/**
 * Bytes from a guest → safe text lines. The guest is hostile: lines are cut at a maximum
 * length, invalid UTF-8 becomes U+FFFD, and control characters (C0 except tab, DEL, C1 —
 * anything a terminal could act on, like ESC sequences) are replaced by U+FFFD, so printing
 * a stored log never drives the operator's terminal. CR is dropped (serial consoles send CRLF).
 */
export const MAX_LINE_BYTES = 16 * 1024;

const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;

export function sanitizeLine(raw: Buffer): string {
  return raw.toString('utf8').replace(/\r/g, '').replace(CONTROL, '\uFFFD');
}

/** Splits a byte stream into lines; a line longer than maxBytes is emitted in pieces. */
export class LineSplitter {
  private partial: Buffer = Buffer.alloc(0);

  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxBytes = MAX_LINE_BYTES,
  ) {}

  push(chunk: Buffer): void {
    let buf = this.partial.length ? Buffer.concat([this.partial, chunk]) : chunk;
    let nl: number;
    while ((nl = buf.indexOf(0x0a)) >= 0) {
      this.emit(buf.subarray(0, nl));
      buf = buf.subarray(nl + 1);
    }
    while (buf.length >= this.maxBytes) {
      this.onLine(sanitizeLine(buf.subarray(0, this.maxBytes)));
      buf = buf.subarray(this.maxBytes);
    }
    this.partial = Buffer.from(buf);
  }

  /** Emits what is left as a last line (the stream ended without a newline). */
  end(): void {
    if (this.partial.length) this.emit(this.partial);
    this.partial = Buffer.alloc(0);
  }

  private emit(b: Buffer): void {
    for (let i = 0; i < b.length; i += this.maxBytes) this.onLine(sanitizeLine(b.subarray(i, i + this.maxBytes)));
    if (b.length === 0) this.onLine('');
  }
}
