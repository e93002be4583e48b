/**
 * Which guest account an envd call runs as, and how its paths resolve (envd's
 * permissions.ExpandAndResolve). The SDK names the user in `Authorization: Basic
 * base64("<user>:")` on RPC calls and in the `username` query parameter on /files; without
 * either, the default is E2B's base-template user, `user` (uid 1000, home /home/user).
 */
import { posix } from 'node:path';
import { ConnectError } from './connect-codec.js';

export const DEFAULT_USER = 'user';
const USER_NAME = /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}$/;

export function checkUser(name: string): string {
  if (!USER_NAME.test(name)) throw new ConnectError('invalid_argument', `invalid user name ${JSON.stringify(name)}`);
  return name;
}

/** The user named by an `Authorization: Basic` header, or the default. */
export function userFromAuthorization(header: string | undefined): string {
  if (!header) return DEFAULT_USER;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) throw new ConnectError('invalid_argument', 'Authorization must be Basic base64("<user>:")');
  const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8');
  const name = decoded.split(':')[0] ?? '';
  return name === '' ? DEFAULT_USER : checkUser(name);
}

/** The user named by the /files `username` query parameter, or the default. */
export function userFromQuery(v: string | null): string {
  return v === null || v === '' ? DEFAULT_USER : checkUser(v);
}

export function homeOf(user: string): string {
  return user === 'root' ? '/root' : `/home/${user}`;
}

/** An absolute, normalized guest path: `~` and relative paths resolve against the user's home. */
export function resolvePath(p: string | undefined, user: string): string {
  if (p === undefined || p === '') return homeOf(user);
  if (p.includes('\0')) throw new ConnectError('invalid_argument', 'path contains a NUL byte');
  let abs = p;
  if (p === '~') abs = homeOf(user);
  else if (p.startsWith('~/')) abs = posix.join(homeOf(user), p.slice(2));
  else if (!p.startsWith('/')) abs = posix.join(homeOf(user), p);
  const norm = posix.normalize(abs);
  return norm.length > 1 && norm.endsWith('/') ? norm.slice(0, -1) : norm;
}
