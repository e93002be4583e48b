// Resolves an exec `user` against the guest's /etc/passwd.

import { readFile } from 'node:fs/promises';
import { AgentError } from '@kiln/protocol';

export interface User {
  name: string;
  uid: number;
  gid: number;
  home: string;
  /** Login shell from /etc/passwd ("/bin/sh" when it names none). */
  shell: string;
  /** the account is an /etc/passwd entry (its groups can be looked up) */
  fromPasswd?: boolean;
}

/** `undefined` means the agent's own user (root in a guest). */
export async function lookupUser(spec: string | undefined): Promise<User> {
  if (spec === undefined) {
    const uid = process.getuid?.() ?? 0;
    return uid === 0
      ? { name: 'root', uid: 0, gid: 0, home: '/root', shell: await rootShell() }
      : { name: process.env.USER ?? String(uid), uid, gid: process.getgid?.() ?? uid, home: process.env.HOME ?? '/', shell: process.env.SHELL ?? '/bin/sh' };
  }
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const line of passwd.split('\n')) {
    const [name, , uid, gid, , home, shell] = line.split(':');
    if (name === undefined || uid === undefined || gid === undefined) continue;
    if (name === spec || uid === spec) return { name, uid: Number(uid), gid: Number(gid), home: home || '/', shell: shell || '/bin/sh', fromPasswd: true };
  }
  if (/^\d+$/.test(spec)) {
    const uid = Number(spec);
    return { name: spec, uid, gid: uid, home: '/', shell: '/bin/sh' };
  }
  throw new AgentError('INVALID_ARGUMENT', `unknown user ${spec}`);
}

async function rootShell(): Promise<string> {
  const passwd = await readFile('/etc/passwd', 'utf8').catch(() => '');
  const root = passwd.split('\n').find((l) => l.startsWith('root:'));
  return root?.split(':')[6] || '/bin/sh';
}
