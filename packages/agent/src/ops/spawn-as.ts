// How a command runs as another user: node's spawn({uid, gid}) drops every supplementary group
// (libuv calls setgroups(0)), so `user` would lose `docker` (and any group /etc/group gives it).
// When the agent is root, the account is in /etc/passwd and the command resolves to an
// executable, the command goes through util-linux's `setpriv --init-groups` instead (it execs:
// the pid is the command's); otherwise spawn's uid/gid as before (same errors for a missing command).

import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { User } from './users.js';

export const SETPRIV = '/usr/bin/setpriv';

export interface SpawnPlan {
  file: string;
  args: string[];
  ids: { uid: number; gid: number } | Record<string, never>;
}

const executable = (p: string): boolean => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** `file` as the spawn would find it (absolute, relative to cwd, or on PATH), or null. */
export function resolveCommand(file: string, path: string, cwd: string): string | null {
  if (file.includes('/')) return executable(file.startsWith('/') ? file : join(cwd, file)) ? file : null;
  for (const dir of path.split(delimiter)) if (dir && executable(join(dir, file))) return join(dir, file);
  return null;
}

export function spawnPlan(file: string, args: string[], user: User, requested: string | undefined, ctx: { path: string; cwd: string; setpriv?: string }): SpawnPlan {
  if (requested === undefined) return { file, args, ids: {} };
  const setpriv = ctx.setpriv ?? SETPRIV;
  const viaSetpriv = process.getuid?.() === 0 && user.fromPasswd && executable(setpriv) && resolveCommand(file, ctx.path, ctx.cwd) !== null;
  if (!viaSetpriv) return { file, args, ids: { uid: user.uid, gid: user.gid } };
  return { file: setpriv, args: [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', '--', file, ...args], ids: {} };
}
