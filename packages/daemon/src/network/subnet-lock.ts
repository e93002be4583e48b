/**
 * One kilnd per sandbox subnet on a host. Two kilnds on the same subnet hand out the same
 * addresses and fail each other's creates, so kilnd takes a host-wide lock per subnet before
 * it builds anything: the file `<lockDir>/net-<base>_<prefix>.lock` (lockDir default /run/kiln),
 * locked with flock(2) (util-linux `flock` on an inherited descriptor: the lock belongs to the
 * open file, so it lasts while kilnd keeps the descriptor and dies with kilnd, never stale).
 * The holder writes its pid, state directory and start time into the file, so a refused kilnd
 * can say who holds the subnet. Subnets that overlap a held one are refused too.
 *
 * Whether a lock is held (isSubnetHeld) is what `kiln gc` asks before it calls another
 * instance's leftovers orphaned.
 */
import { spawn } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../errors.js';
import { type Cidr, cidrsOverlap, formatCidr, parseCidr } from './ipv4.js';

export const DEFAULT_LOCK_DIR = '/run/kiln';

export interface SubnetHolder {
  pid: number;
  stateDir: string;
  subnet: string;
  since: string;
}

export interface SubnetLock {
  path: string;
  release(): void;
}

export const lockFileName = (subnet: Cidr): string => `net-${formatCidr(subnet).replace('/', '_')}.lock`;

function subnetOfLockFile(name: string): Cidr | null {
  const m = /^net-(\d+\.\d+\.\d+\.\d+)_(\d+)\.lock$/.exec(name);
  return m ? parseCidr(`${m[1]}/${m[2]}`) : null;
}

/** flock(LOCK_EX|LOCK_NB) on `fd`: true when taken, false when another open file holds it. */
function tryFlock(fd: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const p = spawn('flock', ['--nonblock', '--exclusive', '--conflict-exit-code', '75', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let err = '';
    p.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    p.on('error', (e) => reject(new KilnError('NETWORK_UNAVAILABLE', `flock (util-linux) is needed for the subnet lock: ${e.message}`, { cause: e })));
    p.on('close', (code) => (code === 0 ? resolve(true) : code === 75 ? resolve(false) : reject(new KilnError('NETWORK_UNAVAILABLE', `flock failed (${code}): ${err.trim()}`))));
  });
}

export function readHolder(path: string): SubnetHolder | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as SubnetHolder;
  } catch {
    return null;
  }
}

/** Whether a live process holds the lock file at `path` (false when it does not exist). */
export async function isLockHeld(path: string): Promise<boolean> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return false;
  }
  try {
    return !(await tryFlock(fd));
  } finally {
    closeSync(fd); // releases the probe's lock, if it took one
  }
}

/** Subnets whose lock some live kilnd holds, with their holders (`except`: a lock path to leave out). */
export async function heldSubnets(lockDir: string, except?: string): Promise<Array<{ subnet: Cidr; path: string; holder: SubnetHolder | null }>> {
  let names: string[] = [];
  try {
    names = readdirSync(lockDir);
  } catch {
    return [];
  }
  const out: Array<{ subnet: Cidr; path: string; holder: SubnetHolder | null }> = [];
  for (const name of names) {
    const subnet = subnetOfLockFile(name);
    const path = join(lockDir, name);
    if (subnet && path !== except && (await isLockHeld(path))) out.push({ subnet, path, holder: readHolder(path) });
  }
  return out;
}

const describeHolder = (h: SubnetHolder | null, path: string): string =>
  h ? `kilnd pid ${h.pid} (state dir ${h.stateDir}, since ${h.since})` : `another process (lock ${path})`;

/** Takes the subnet's lock or throws NETWORK_SUBNET_IN_USE naming the holder. */
export async function acquireSubnetLock(subnet: Cidr, o: { lockDir?: string; stateDir: string }): Promise<SubnetLock> {
  const lockDir = o.lockDir ?? DEFAULT_LOCK_DIR;
  mkdirSync(lockDir, { recursive: true, mode: 0o755 });
  const path = join(lockDir, lockFileName(subnet));
  const fd = openSync(path, 'a+', 0o644);
  const refuse = (holder: SubnetHolder | null, held: string, lockPath: string) =>
    new KilnError(
      'NETWORK_SUBNET_IN_USE',
      `sandbox subnet ${formatCidr(subnet)}${held ? ` ${held}` : ''} is in use by ${describeHolder(holder, lockPath)}; give this kilnd another subnet (--net-subnet or KILN_NET_SUBNET)`,
      { status: 409, details: { field: 'network.subnet', holder } },
    );
  if (!(await tryFlock(fd))) {
    closeSync(fd);
    throw refuse(readHolder(path), '', path);
  }
  const overlap = (await heldSubnets(lockDir, path)).find((h) => cidrsOverlap(h.subnet, subnet));
  if (overlap) {
    closeSync(fd);
    throw refuse(overlap.holder, `(overlapping ${formatCidr(overlap.subnet)})`, overlap.path);
  }
  const holder: SubnetHolder = { pid: process.pid, stateDir: o.stateDir, subnet: formatCidr(subnet), since: new Date().toISOString() };
  ftruncateSync(fd, 0);
  writeSync(fd, JSON.stringify(holder) + '\n', 0);
  let open = true;
  return {
    path,
    release: () => {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}
