/**
 * envd's EntryInfo (filesystem.proto) from GNU find's -printf: one NUL-terminated record per
 * path, fields separated by a tab except the last (the path, which may hold tabs).
 *   %y type (f d l …) · %s size · %m octal mode · %M ls-style permissions · %u %g owner, group
 *   · %T@ mtime (seconds.fraction) · %l symlink target · %p path
 */

export const FIND_FORMAT = '%y\\t%s\\t%m\\t%M\\t%u\\t%g\\t%T@\\t%l\\t%p\\0';

export type FileTypeName = 'FILE_TYPE_UNSPECIFIED' | 'FILE_TYPE_FILE' | 'FILE_TYPE_DIRECTORY' | 'FILE_TYPE_SYMLINK';

export interface EntryInfo {
  name: string;
  type: FileTypeName;
  path: string;
  /** int64 as a string (proto3 JSON). */
  size: string;
  mode: number;
  permissions: string;
  owner: string;
  group: string;
  modifiedTime: string;
  symlinkTarget?: string;
}

const TYPE: Record<string, FileTypeName> = { f: 'FILE_TYPE_FILE', d: 'FILE_TYPE_DIRECTORY', l: 'FILE_TYPE_SYMLINK' };

export function parseFindRecords(out: Buffer): EntryInfo[] {
  const entries: EntryInfo[] = [];
  for (const rec of out.toString('utf8').split('\0')) {
    if (rec === '') continue;
    const f = rec.split('\t');
    if (f.length < 9) continue;
    const [kind, size, mode, perms, owner, group, mtime, link] = f as [string, string, string, string, string, string, string, string];
    const path = f.slice(8).join('\t');
    const perm = parseInt(mode, 8) & 0o7777;
    const ms = Math.round(parseFloat(mtime) * 1000);
    const e: EntryInfo = {
      name: path === '/' ? '/' : path.slice(path.lastIndexOf('/') + 1),
      type: TYPE[kind] ?? 'FILE_TYPE_UNSPECIFIED',
      path,
      size: size,
      mode: perm,
      permissions: perms,
      owner,
      group,
      modifiedTime: new Date(Number.isFinite(ms) ? ms : 0).toISOString(),
    };
    if (kind === 'l') e.symlinkTarget = link;
    entries.push(e);
  }
  return entries;
}

/** find's arguments to print `paths` themselves (no descent). */
export function statArgv(paths: string[]): string[] {
  return ['find', ...paths, '-maxdepth', '0', '-printf', FIND_FORMAT];
}
