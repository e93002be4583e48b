/**
 * filesystem.Filesystem (envd's filesystem.proto): Stat, MakeDir, Move, ListDir, Remove. Each
 * runs as the calling user in the guest (find/mkdir/mv/rm through the agent's exec), so
 * ownership and permission errors are the guest's. WatchDir and the watcher calls are in
 * watch-service.ts.
 */
import { ConnectError } from './connect-codec.js';
import { int, str, type EnvdCall, type ServiceMethods } from './call.js';
import { FIND_FORMAT, parseFindRecords, statArgv, type EntryInfo } from './entry-info.js';
import { runAs, shellError } from './guest-shell.js';
import { resolvePath } from './user.js';
import { watchMethods } from './watch-service.js';
import { fileRecord, type FileOp } from '../../audit/guest-records.js';

/** Runs a file change and records it in kiln's audit log, as kiln's own file routes do (a rename also names `to`). */
async function audited<T>(call: EnvdCall, op: FileOp, path: string, extra: { recursive?: boolean; to?: string }, fn: () => Promise<T>): Promise<T> {
  const { to, ...r } = extra;
  const record = (errorCode?: string) => {
    const rec = fileRecord(call.sandboxId, op, path, { ...r, ...(errorCode ? { errorCode } : {}) });
    return to === undefined ? rec : { ...rec, data: { ...rec.data, to } };
  };
  try {
    const v = await fn();
    await call.audit.append(record());
    return v;
  } catch (err) {
    await call.audit.append(record((err as { code?: string }).code ?? 'internal')).catch(() => undefined);
    throw err;
  }
}

function pathArg(call: EnvdCall, msg: Record<string, unknown>, key = 'path'): string {
  const p = str(msg, key);
  if (p === '') throw new ConnectError('invalid_argument', `${key} is required`);
  return resolvePath(p, call.user);
}

export async function statEntry(call: EnvdCall, path: string): Promise<EntryInfo> {
  const r = await runAs(call.agent, call.user, statArgv([path]));
  const [entry] = parseFindRecords(r.stdout);
  if (r.exitCode !== 0 || !entry) throw shellError(r, `stat ${path}`);
  return entry;
}

/** Compares paths segment by segment: a directory's entries follow it, before its next sibling. */
function byPath(a: EntryInfo, b: EntryInfo): number {
  const x = a.path.split('/');
  const y = b.path.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return (x[i] as string) < (y[i] as string) ? -1 : 1;
  }
  return x.length - y.length;
}

const MKDIR = 'if [ -e "$1" ]; then echo "$1: File exists" >&2; exit 17; fi; mkdir -p -- "$1" && find "$1" -maxdepth 0 -printf "$2"';
const MOVE = 'mkdir -p -- "$(dirname -- "$2")" && mv -T -- "$1" "$2" && find "$2" -maxdepth 0 -printf "$3"';
const LIST =
  'if [ ! -d "$1" ]; then if [ -e "$1" ]; then echo "$1: Not a directory" >&2; else echo "$1: No such file or directory" >&2; fi; exit 2; fi; ' +
  'find -H "$1" -mindepth 1 -maxdepth "$2" -printf "$3"';

export const filesystemMethods: ServiceMethods = {
  unary: {
    Stat: async (call, msg) => ({ entry: await statEntry(call, pathArg(call, msg)) }),

    MakeDir: async (call, msg) => {
      const path = pathArg(call, msg);
      return audited(call, 'mkdir', path, { recursive: true }, async () => {
        const r = await runAs(call.agent, call.user, ['sh', '-c', MKDIR, 'sh', path, FIND_FORMAT]);
        if (r.exitCode === 17) throw new ConnectError('already_exists', `directory ${path} already exists`);
        const [entry] = parseFindRecords(r.stdout);
        if (r.exitCode !== 0 || !entry) throw shellError(r, `make directory ${path}`);
        return { entry };
      });
    },

    Move: async (call, msg) => {
      const from = pathArg(call, msg, 'source');
      const to = pathArg(call, msg, 'destination');
      return audited(call, 'rename', from, { to }, async () => {
        const r = await runAs(call.agent, call.user, ['sh', '-c', MOVE, 'sh', from, to, FIND_FORMAT]);
        const [entry] = parseFindRecords(r.stdout);
        if (r.exitCode !== 0 || !entry) throw shellError(r, `move ${from} to ${to}`);
        return { entry };
      });
    },

    ListDir: async (call, msg) => {
      const path = pathArg(call, msg);
      const depth = Math.max(1, int(msg, 'depth') ?? 1);
      const r = await runAs(call.agent, call.user, ['sh', '-c', LIST, 'sh', path, String(depth), FIND_FORMAT]);
      if (r.exitCode === 2 && /Not a directory/.test(r.stderr)) throw new ConnectError('invalid_argument', `path ${path} is not a directory`);
      // find reports unreadable subdirectories on stderr and exits 1, but lists the rest (as envd skips them).
      if (r.exitCode !== 0 && !(r.exitCode === 1 && r.stdout.length > 0)) throw shellError(r, `list ${path}`);
      return { entries: parseFindRecords(r.stdout).sort(byPath) };
    },

    Remove: async (call, msg) => {
      const path = pathArg(call, msg);
      if (path === '/') throw new ConnectError('invalid_argument', 'refusing to remove /');
      return audited(call, 'remove', path, { recursive: true }, async () => {
        const r = await runAs(call.agent, call.user, ['rm', '-rf', '--', path]);
        if (r.exitCode !== 0) throw shellError(r, `remove ${path}`);
        return {};
      });
    },

    ...watchMethods.unary,
  },
  stream: { ...watchMethods.stream },
};
