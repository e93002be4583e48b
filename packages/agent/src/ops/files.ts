// file.stat, file.list, file.mkdir, file.remove, file.rename.

import type { Stats } from 'node:fs';
import { lstat, mkdir as fsMkdir, readdir, rename as fsRename, rm, rmdir, stat as fsStat, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AgentError, errnoToCode, type DirEntry } from '@kiln/protocol';
import type { OpHandler } from './context.js';

/** Keeps each file.list reply well under MAX_HEADER_BYTES (64 KiB). */
const LIST_PAGE_BUDGET_BYTES = 48 * 1024;

export function fileType(st: Stats): DirEntry['type'] {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  return 'other';
}

/** Runs an fs call, turning its errno into a coded error that names the path. */
export async function fsCall<T>(path: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw new AgentError(errnoToCode(err), `${path}: ${(err as Error).message}`, { cause: err });
  }
}

export const stat: OpHandler<'file.stat'> = async (_ctx, { path }) => {
  const st = await fsCall(path, () => lstat(path));
  return { path, type: fileType(st), size: st.size, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs };
};

export const list: OpHandler<'file.list'> = async (_ctx, { path, offset = 0 }) => {
  const st = await fsCall(path, () => fsStat(path));
  if (!st.isDirectory()) throw new AgentError('NOT_DIRECTORY', `${path} is not a directory`);
  const names = (await fsCall(path, () => readdir(path))).sort();
  const entries: DirEntry[] = [];
  let budget = LIST_PAGE_BUDGET_BYTES;
  let i = offset;
  for (; i < names.length; i++) {
    const name = names[i] as string;
    const est = await lstat(join(path, name)).catch(() => undefined);
    if (!est) continue; // removed while listing
    const entry: DirEntry = { name, type: fileType(est), size: est.size, mode: est.mode & 0o7777, mtimeMs: est.mtimeMs };
    budget -= Buffer.byteLength(JSON.stringify(entry)) + 1;
    if (budget < 0 && entries.length > 0) break;
    entries.push(entry);
  }
  return { entries, nextOffset: i < names.length ? i : null };
};

export const mkdir: OpHandler<'file.mkdir'> = async (_ctx, { path, recursive = false, mode = 0o755 }) => {
  await fsCall(path, () => fsMkdir(path, { recursive, mode }));
  if (recursive) {
    const st = await fsCall(path, () => fsStat(path));
    if (!st.isDirectory()) throw new AgentError('EXISTS', `${path} exists and is not a directory`);
  }
  return {};
};

export const remove: OpHandler<'file.remove'> = async (_ctx, { path, recursive = false }) => {
  if (resolve(path) === '/') throw new AgentError('INVALID_ARGUMENT', 'refusing to remove /');
  const st = await fsCall(path, () => lstat(path));
  if (!st.isDirectory()) {
    await fsCall(path, () => unlink(path));
  } else if (recursive) {
    await fsCall(path, () => rm(path, { recursive: true }));
  } else {
    await fsCall(path, async () => {
      try {
        await rmdir(path);
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOTEMPTY') {
          throw new AgentError('EXISTS', `${path} is a non-empty directory (pass recursive: true)`);
        }
        throw err;
      }
    });
  }
  return {};
};

export const rename: OpHandler<'file.rename'> = async (_ctx, { from, to }) => {
  if (resolve(from) === '/' || resolve(to) === '/') throw new AgentError('INVALID_ARGUMENT', 'renaming / is refused');
  await fsCall(from, () => fsRename(from, to));
  return {};
};
