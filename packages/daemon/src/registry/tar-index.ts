/**
 * Reads the member list of a tar file (offsets and sizes) without extracting it: an image
 * archive may come from a sandbox, and kilnd only reads the members it needs by name (no path
 * on the host is ever made from a member's name). ustar, GNU long names and pax paths.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

export interface TarMember {
  offset: number;
  size: number;
}

const str = (b: Buffer, from: number, len: number): string => {
  const s = b.subarray(from, from + len);
  const nul = s.indexOf(0);
  return s.subarray(0, nul < 0 ? len : nul).toString('utf8');
};

const clean = (n: string): string => n.replace(/^(\.\/)+/, '').replace(/\/+$/, '');

export function tarIndex(path: string): Map<string, TarMember> {
  const fd = openSync(path, 'r');
  const out = new Map<string, TarMember>();
  try {
    const total = fstatSync(fd).size;
    const h = Buffer.alloc(512);
    let pos = 0;
    let longName: string | null = null;
    while (pos + 512 <= total) {
      readSync(fd, h, 0, 512, pos);
      if (h.every((x) => x === 0)) break;
      const sizeField = str(h, 124, 12).trim();
      const size = sizeField ? parseInt(sizeField, 8) : 0;
      if (!Number.isFinite(size) || size < 0) throw new Error(`bad tar header at ${pos}`);
      const type = String.fromCharCode(h[156] ?? 0);
      const data = pos + 512;
      const next = data + Math.ceil(size / 512) * 512;
      if (type === 'L' || type === 'x') {
        const body = Buffer.alloc(Math.min(size, 1 << 20));
        readSync(fd, body, 0, body.length, data);
        if (type === 'L') longName = str(body, 0, body.length);
        else {
          const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
          if (m) longName = m[1] ?? null;
        }
      } else {
        const prefix = str(h, 345, 155);
        const name = longName ?? (prefix ? `${prefix}/${str(h, 0, 100)}` : str(h, 0, 100));
        longName = null;
        if (type === '0' || type === '\0' || type === '7') out.set(clean(name), { offset: data, size });
      }
      pos = next;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

export function readMember(path: string, m: TarMember, max = 64 * 1024 * 1024): Buffer {
  if (m.size > max) throw new Error(`archive member too large (${m.size} bytes)`);
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(m.size);
    readSync(fd, b, 0, m.size, m.offset);
    return b;
  } finally {
    closeSync(fd);
  }
}
