/**
 * Audit chain files: `<dir>/audit-<first seq, 12 digits>.jsonl`, oldest first. Rotation starts
 * a new file whose first record chains to the last record of the previous one, so the files
 * together form one chain.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const FILE_RE = /^audit-(\d{12})\.jsonl$/;

export interface ChainFile {
  name: string;
  path: string;
  /** The seq its name claims for its first record. */
  firstSeq: number;
}

export const chainFileName = (firstSeq: number): string => `audit-${String(firstSeq).padStart(12, '0')}.jsonl`;

export function listChainFiles(dir: string): ChainFile[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const files: ChainFile[] = [];
  for (const name of names) {
    const m = FILE_RE.exec(name);
    if (m?.[1]) files.push({ name, path: join(dir, name), firstSeq: Number(m[1]) });
  }
  return files.sort((a, b) => a.firstSeq - b.firstSeq);
}

/** Splits file contents into lines; the last element is a torn (unterminated) tail or ''. */
export function splitLines(text: string): { lines: string[]; torn: string } {
  const parts = text.split('\n');
  const torn = parts.pop() ?? '';
  return { lines: parts, torn };
}
