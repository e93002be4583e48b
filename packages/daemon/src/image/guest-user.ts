/**
 * The guest's non-root account: `user` (uid 1000, group `user` gid 1000, home /home/user owned
 * by it, shell /bin/bash, member of `docker`, sudo without a password through
 * /etc/sudoers.d/kiln-user), added to the final image layer. That layer is a hard-link copy of
 * the cached base layer, so the account files are replaced (unlinked and written anew), never
 * edited in place: the base layer's copies stay as they were.
 */
import { chown, copyFile, mkdir, readdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageBuildError } from './errors.js';

export const GUEST_USER = { name: 'user', uid: 1000, gid: 1000, home: '/home/user', shell: '/bin/bash' } as const;

/** Days since the epoch, as /etc/shadow counts the last password change. */
const today = (): number => Math.floor(Date.now() / 86_400_000);

/** Appends `line` to an account file unless an entry named `name` is there already; returns the new text. */
export function withEntry(text: string, name: string, line: string): string {
  const lines = text.split('\n').filter((l) => l !== '');
  if (lines.some((l) => l.split(':')[0] === name)) return text;
  return [...lines, line].join('\n') + '\n';
}

/** Adds `member` to the supplementary members of `group` in a group or gshadow text (last field); no-op when absent or there. */
export function withMember(text: string, group: string, member: string): string {
  return text
    .split('\n')
    .map((l) => {
      const f = l.split(':');
      if (f[0] !== group || f.length < 3) return l;
      const members = (f[f.length - 1] ?? '').split(',').filter(Boolean);
      if (members.includes(member)) return l;
      f[f.length - 1] = [...members, member].join(',');
      return f.join(':');
    })
    .join('\n');
}

/** sudo without a password for the guest user (root stays reachable through kiln's exec as user root). */
export const SUDOERS_LINE = `${GUEST_USER.name} ALL=(ALL:ALL) NOPASSWD: ALL\n`;

/** Refuses an id that another entry already holds (field 2 of passwd/group lines). */
function assertFreeId(text: string, file: string, id: number, name: string): void {
  for (const l of text.split('\n')) {
    const [n, , i] = l.split(':');
    if (n !== undefined && n !== name && i === String(id)) throw new ImageBuildError(`${file}: id ${id} is taken by ${n}; cannot add ${name}`);
  }
}

/**
 * Replaces `path` with `text`, keeping its owner and mode (/etc/shadow is root:shadow 0640).
 * Unlinked first: never written through a hard link into the base layer.
 */
async function replaceFile(path: string, text: string, mode: number): Promise<void> {
  const old = await stat(path).catch(() => undefined);
  await unlink(path).catch(() => undefined);
  await writeFile(path, text, { mode: old ? old.mode & 0o7777 : mode });
  if (old) await chown(path, old.uid, old.gid);
}

export async function addGuestUser(root: string): Promise<void> {
  const u = GUEST_USER;
  const etc = join(root, 'etc');
  const read = (f: string) => readFile(join(etc, f), 'utf8').catch(() => '');
  const [passwd, group, shadow, gshadow] = await Promise.all([read('passwd'), read('group'), read('shadow'), read('gshadow')]);
  assertFreeId(passwd, 'passwd', u.uid, u.name);
  assertFreeId(group, 'group', u.gid, u.name);
  await replaceFile(join(etc, 'passwd'), withEntry(passwd, u.name, `${u.name}:x:${u.uid}:${u.gid}::${u.home}:${u.shell}`), 0o644);
  await replaceFile(join(etc, 'group'), withMember(withEntry(group, u.name, `${u.name}:x:${u.gid}:`), 'docker', u.name), 0o644);
  // No password: the account is reached through kiln (exec/pty with user "user"), never a login.
  await replaceFile(join(etc, 'shadow'), withEntry(shadow, u.name, `${u.name}:*:${today()}:0:99999:7:::`), 0o640);
  await replaceFile(join(etc, 'gshadow'), withMember(withEntry(gshadow, u.name, `${u.name}:!::`), 'docker', u.name), 0o640);
  // a new file in sudoers.d (read by the default /etc/sudoers' @includedir); sudo wants 0440
  await mkdir(join(etc, 'sudoers.d'), { recursive: true, mode: 0o750 });
  await replaceFile(join(etc, 'sudoers.d/kiln-user'), SUDOERS_LINE, 0o440);

  const home = join(root, u.home);
  await mkdir(home, { recursive: true, mode: 0o755 });
  const skel = join(etc, 'skel');
  for (const name of await readdir(skel).catch(() => [] as string[])) {
    const from = join(skel, name);
    if (!(await stat(from)).isFile()) continue;
    // copyFile writes a new inode: the base layer's skel files are untouched.
    await copyFile(from, join(home, name));
    await chown(join(home, name), u.uid, u.gid);
  }
  await chown(home, u.uid, u.gid);
}
