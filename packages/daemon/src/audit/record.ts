/**
 * The audit record and its hash chain. A record's `hash` is the SHA-256 (hex) of the
 * canonical JSON of the record without its `hash` member — which includes `prevHash`, the
 * hash of the record before it. The first record of a chain has prevHash GENESIS_HASH.
 * On disk a record is one line: the canonical JSON of the whole record, then "\n".
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical.js';

export const GENESIS_HASH = '0'.repeat(64);

export const AUDIT_TYPES = ['api', 'exec', 'file', 'lifecycle', 'policy', 'audit', 'process', 'terminal', 'proxy'] as const;
export type AuditType = (typeof AUDIT_TYPES)[number];

/**
 * Who caused a record: a local API caller (the unix-socket peer), a caller on the TCP
 * listener (its API key's id and tenant when the key parsed/was valid, never the key; the
 * client address), or kilnd itself.
 */
export type AuditActor =
  | { kind: 'unix'; uid: number | null; gid: number | null; pid: number | null }
  | { kind: 'key'; keyId: string | null; tenant: string | null; address: string | null }
  | { kind: 'kilnd' };

export interface AuditInput {
  type: AuditType;
  sandboxId?: string;
  /** Defaults to the id of the API request being served, if any. */
  requestId?: string;
  /** Defaults to the caller of the API request being served, else kilnd. */
  actor?: AuditActor;
  data: Record<string, unknown>;
}

export interface AuditRecord extends AuditInput {
  seq: number;
  /** ISO-8601 UTC with milliseconds. */
  time: string;
  prevHash: string;
  hash: string;
  actor: AuditActor;
}

export type UnsealedRecord = Omit<AuditRecord, 'hash'>;

export const sha256Hex = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

export function recordHash(rec: UnsealedRecord | AuditRecord): string {
  const { hash: _hash, ...rest } = rec as AuditRecord;
  return sha256Hex(canonicalJson(rest));
}

export function seal(rec: UnsealedRecord): AuditRecord {
  return { ...rec, hash: recordHash(rec) };
}

/** The exact line stored for a record (canonical JSON + newline). */
export const recordLine = (rec: AuditRecord): string => `${canonicalJson(rec)}\n`;
