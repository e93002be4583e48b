/**
 * Walks the audit chain (every file, oldest first) and reports the first broken link:
 *   edited     — a record's bytes are not the canonical form of its content, or its hash is
 *                not the hash of its content (any byte of it was changed);
 *   malformed  — a line that is not a record at all (or is unterminated);
 *   missing    — seq numbers skip: records were deleted (or the first file(s) removed without
 *                a `pruned` record from retention to anchor the rest);
 *   reordered  — a record stands after one with a higher seq (records swapped or moved);
 *   link       — a record's prevHash is not the hash of the record before it (a record
 *                before it was replaced by a forged one with a consistent hash);
 *   file-name  — a file's name does not match the seq of its first record;
 *   truncated  — the chain ends before the head kilnd knows was written (records deleted
 *                from the end); only checked when an expected head is given;
 *   head-mismatch — the record at the expected head seq is not the one kilnd wrote.
 * Reading is one file at a time; the rest of the chain is re-read only to tell a deletion
 * from a reordering once something is already wrong.
 *
 * A live log grows while it is verified (every API call appends a record, verify's own call
 * included). Verify checks a consistent prefix: the files and their sizes as they were when
 * it started (bytes appended later are not read; a last line still being written is not yet
 * present, with `allowTornTail`), and with `expectHead` it stops at that record — records
 * after the head kilnd knew to be durable belong to the next verify.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { canonicalJson } from './canonical.js';
import { listChainFiles, splitLines, type ChainFile } from './files.js';
import { GENESIS_HASH, recordHash, type AuditRecord } from './record.js';

export type BrokenReason = 'edited' | 'malformed' | 'missing' | 'reordered' | 'link' | 'file-name' | 'truncated' | 'head-mismatch';

export interface BrokenLink {
  /** The seq of the record at fault (for a missing record: the first missing seq). */
  seq: number;
  file: string;
  /** 1-based line in `file` where the walk noticed it. */
  line: number;
  reason: BrokenReason;
  message: string;
}

export interface ChainHead {
  seq: number;
  hash: string;
}

export interface VerifyResult {
  ok: boolean;
  files: number;
  records: number;
  /** First seq present; > 1 when older files were removed by retention (anchored by a `pruned` record). */
  firstSeq: number | null;
  head: ChainHead | null;
  broken: BrokenLink | null;
}

export interface VerifyOptions {
  /** The last record kilnd knows is durable: the chain must reach it, unchanged. */
  expectHead?: ChainHead | null;
  /** Ignore an unterminated last line of the newest file (a write in flight). Default false. */
  allowTornTail?: boolean;
}

/** A chain file with its size when the verification started: only those bytes are read. */
export interface SnapFile extends ChainFile {
  bytes: number;
}

/** The chain files and their sizes now; a file removed meanwhile (retention) is left out. */
export function snapshotFiles(dir: string): SnapFile[] {
  const out: SnapFile[] = [];
  for (const f of listChainFiles(dir)) {
    try {
      out.push({ ...f, bytes: statSync(f.path).size });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return out;
}

/** The first `file.bytes` bytes of a file (appends made after the snapshot are not read). */
function readPrefix(file: SnapFile): string {
  const buf = Buffer.alloc(file.bytes);
  const fd = openSync(file.path, 'r');
  try {
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, got);
      if (n === 0) break; // shrunk since the snapshot: what is there is what gets checked
      got += n;
    }
    return buf.subarray(0, got).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function parseRecord(line: string): AuditRecord | null {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  const r = v as Partial<AuditRecord> | null;
  if (!r || typeof r !== 'object' || Array.isArray(r)) return null;
  if (!Number.isSafeInteger(r.seq) || (r.seq ?? 0) < 1) return null;
  if (typeof r.prevHash !== 'string' || typeof r.hash !== 'string' || typeof r.time !== 'string' || typeof r.type !== 'string') return null;
  if (!r.data || typeof r.data !== 'object') return null;
  return r as AuditRecord;
}

/** Parses one stored line; null when it is not a record. Used by readers too. */
export const parseAuditLine = parseRecord;

/** Is there a record with `seq` at or after (fileIdx, lineIdx)? */
function findLater(files: SnapFile[], fileIdx: number, lineIdx: number, seq: number): boolean {
  for (let f = fileIdx; f < files.length; f++) {
    const file = files[f];
    if (!file) continue;
    const { lines } = splitLines(readPrefix(file));
    for (let i = f === fileIdx ? lineIdx : 0; i < lines.length; i++) {
      const r = parseRecord(lines[i] ?? '');
      if (r?.seq === seq) return true;
    }
  }
  return false;
}

export function verifyChain(dir: string, opts: VerifyOptions = {}): VerifyResult {
  try {
    return verifySnapshot(snapshotFiles(dir), opts);
  } catch (err) {
    // A file went away between the snapshot and its read (retention removed it): start over once.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return verifySnapshot(snapshotFiles(dir), opts);
  }
}

/** Verifies the chain as `files` describes it (snapshotFiles): each file up to its size then. */
export function verifySnapshot(files: SnapFile[], opts: VerifyOptions = {}): VerifyResult {
  const stopAt = opts.expectHead && opts.expectHead.seq > 0 ? opts.expectHead.seq : null;
  const res: VerifyResult = { ok: false, files: files.length, records: 0, firstSeq: null, head: null, broken: null };
  const broken = (b: BrokenLink): VerifyResult => ({ ...res, ok: false, broken: b });
  let expected: number | null = null;
  let prev: string | null = null;
  let first: AuditRecord | null = null;
  let headHashSeen: string | null = null;
  const prunes: Array<{ lastSeq: number; lastHash: string }> = [];

  walking: for (let f = 0; f < files.length; f++) {
    const file = files[f] as SnapFile;
    const { lines, torn } = splitLines(readPrefix(file));
    const isNewest = f === files.length - 1;
    if (torn && !(opts.allowTornTail && isNewest)) {
      return broken({ seq: expected ?? file.firstSeq, file: file.name, line: lines.length + 1, reason: 'malformed', message: 'unterminated record at the end of the file' });
    }
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i] as string;
      const at = { file: file.name, line: i + 1 };
      const rec = parseRecord(line);
      const name = expected ?? rec?.seq ?? file.firstSeq;
      if (!rec) return broken({ seq: name, ...at, reason: 'malformed', message: `line ${i + 1} of ${file.name} is not an audit record (expected seq ${name})` });
      if (canonicalJson(rec) !== line || recordHash(rec) !== rec.hash) {
        return broken({ seq: name, ...at, reason: 'edited', message: `record seq ${name} was edited: its content does not match its hash` });
      }
      if (expected !== null && rec.seq !== expected) {
        if (rec.seq > expected && !findLater(files, f, i + 1, expected)) {
          const last = rec.seq - 1;
          return broken({ seq: expected, ...at, reason: 'missing', message: `record${last > expected ? `s seq ${expected}..${last} are` : ` seq ${expected} is`} missing (deleted) before seq ${rec.seq}` });
        }
        const out = Math.min(rec.seq, expected);
        return broken({ seq: out, ...at, reason: 'reordered', message: `record seq ${out} is out of order (seq ${rec.seq} found where seq ${expected} belongs)` });
      }
      if (prev === null && rec.seq === 1 && rec.prevHash !== GENESIS_HASH) {
        return broken({ seq: 1, ...at, reason: 'link', message: 'the first record (seq 1) does not start from the genesis hash' });
      }
      if (prev !== null && rec.prevHash !== prev) {
        return broken({ seq: rec.seq, ...at, reason: 'link', message: `record seq ${rec.seq} does not chain to seq ${rec.seq - 1} (prevHash differs): seq ${rec.seq - 1} was replaced` });
      }
      if (i === 0 && rec.seq !== file.firstSeq) {
        return broken({ seq: rec.seq, ...at, reason: 'file-name', message: `${file.name} names seq ${file.firstSeq} but starts with seq ${rec.seq}` });
      }
      if (rec.type === 'audit' && rec.data.event === 'pruned' && typeof rec.data.lastSeq === 'number' && typeof rec.data.lastHash === 'string') {
        prunes.push({ lastSeq: rec.data.lastSeq, lastHash: rec.data.lastHash });
      }
      first ??= rec;
      if (opts.expectHead && rec.seq === opts.expectHead.seq) headHashSeen = rec.hash;
      expected = rec.seq + 1;
      prev = rec.hash;
      res.records++;
      res.head = { seq: rec.seq, hash: rec.hash };
      if (rec.seq === stopAt) break walking; // later records were appended after verify began
    }
  }
  res.firstSeq = first?.seq ?? null;
  if (first && first.seq > 1 && !prunes.some((p) => p.lastSeq === first.seq - 1 && p.lastHash === first.prevHash)) {
    const f0 = files.find((x) => x.firstSeq === first.seq) ?? files[0];
    return broken({ seq: 1, file: f0?.name ?? '', line: 1, reason: 'missing', message: `records seq 1..${first.seq - 1} are missing and no retention record accounts for them` });
  }
  const want = opts.expectHead;
  if (want && want.seq > 0) {
    const last = res.head?.seq ?? 0;
    const lastFile = files.at(-1)?.name ?? '';
    if (last < want.seq) {
      return broken({ seq: last + 1, file: lastFile, line: 0, reason: 'truncated', message: `the chain ends at seq ${last} but kilnd wrote up to seq ${want.seq}: records ${last + 1}..${want.seq} were removed` });
    }
    if (headHashSeen !== want.hash) {
      return broken({ seq: want.seq, file: lastFile, line: 0, reason: 'head-mismatch', message: `record seq ${want.seq} is not the record kilnd wrote (hash differs)` });
    }
  }
  return { ...res, ok: true };
}
