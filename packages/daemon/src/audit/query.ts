/**
 * Reading the audit log: records after a seq cursor, optionally only one sandbox's or those
 * since a time, in chain order, a page at a time. Files wholly before the cursor are skipped
 * by their names (a file's name is the seq of its first record).
 */
import { readFileSync } from 'node:fs';
import { listChainFiles, splitLines } from './files.js';
import type { AuditRecord } from './record.js';
import { parseAuditLine } from './verify.js';

export interface AuditQuery {
  /** Only records with seq > afterSeq. Default 0. */
  afterSeq?: number;
  /** Only records of this sandbox. */
  sandboxId?: string;
  /** Only records at or after this time (ms since the epoch). */
  sinceMs?: number;
  /** Only records with seq ≤ this (a snapshot bound, e.g. the durable head). */
  untilSeq?: number;
  /** Page size. Default 1000. */
  limit?: number;
  /** Only records this accepts (a tenant's view). */
  filter?: (r: AuditRecord) => boolean;
}

export function matches(rec: AuditRecord, q: AuditQuery): boolean {
  if (q.sandboxId !== undefined && rec.sandboxId !== q.sandboxId) return false;
  if (q.sinceMs !== undefined && Date.parse(rec.time) < q.sinceMs) return false;
  return q.filter ? q.filter(rec) : true;
}

/** One page of matching records and the cursor to continue from (null when done). */
export function queryAudit(dir: string, q: AuditQuery): { records: AuditRecord[]; nextAfter: number | null } {
  const after = q.afterSeq ?? 0;
  const limit = q.limit ?? 1000;
  const until = q.untilSeq ?? Number.MAX_SAFE_INTEGER;
  const files = listChainFiles(dir);
  const out: AuditRecord[] = [];
  for (let i = 0; i < files.length; i++) {
    const next = files[i + 1];
    if (next && next.firstSeq <= after + 1) continue;
    const file = files[i];
    if (!file || file.firstSeq > until) break;
    let text: string;
    try {
      text = readFileSync(file.path, 'utf8');
    } catch {
      continue; // removed by retention meanwhile
    }
    for (const line of splitLines(text).lines) {
      const rec = parseAuditLine(line);
      if (!rec || rec.seq <= after) continue;
      if (rec.seq > until) return { records: out, nextAfter: null };
      if (!matches(rec, q)) continue;
      out.push(rec);
      if (out.length >= limit) return { records: out, nextAfter: rec.seq };
    }
  }
  return { records: out, nextAfter: null };
}
