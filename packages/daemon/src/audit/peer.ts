/**
 * The credentials of the process at the other end of an accepted unix-socket connection
 * (SO_PEERCRED: pid, uid, gid as they were when it called connect()).
 *
 * Node has no API for SO_PEERCRED, and no maintained npm package provides it (the few that
 * did are unmaintained native addons). Matching inodes through /proc/net/unix does not work
 * either: it does not show which socket is whose peer (only the sock_diag netlink interface
 * does, which Node cannot speak). So we ask the kernel directly with the one interpreter
 * every Debian system has (perl-base is Essential: yes): the connection's file descriptor
 * becomes the child's fd 3 and `getsockopt(fd 3, SOL_SOCKET, SO_PEERCRED)` answers. It runs
 * once per connection, not per request, but that connection's first request waits for it:
 * so the asker is a static C helper built next to kilnd (native/kiln-peercred.c, about 1 ms
 * to start) when it is there, and perl (10–30 ms) otherwise.
 *
 * Fd 3, never 0–2: libuv makes a child's stdio descriptors blocking, and O_NONBLOCK belongs
 * to the open file description that the child shares with kilnd. Handed over as stdin, the
 * connection became blocking in kilnd too, and the first response larger than the socket
 * buffer to a client that read slowly froze kilnd's whole event loop in writev(2).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

const PERL = 'use Socket; open(my $s, "+<&=3") or die "fd 3: $!\\n"; my $c = getsockopt($s, SOL_SOCKET, SO_PEERCRED) or die "getsockopt: $!\\n"; print join(" ", unpack("i3", $c)), "\\n";';
const PERL_BIN = '/usr/bin/perl';
/** The static helper, next to the compiled daemon (packages/daemon/dist/kiln-peercred). */
export const PEERCRED_HELPER = fileURLToPath(new URL('../kiln-peercred', import.meta.url));
let helper: [string, string[]] | null = null;
const asker = (): [string, string[]] => (helper ??= existsSync(PEERCRED_HELPER) ? [PEERCRED_HELPER, []] : [PERL_BIN, ['-e', PERL]]);

/** The fd of a connected net.Socket (libuv pipe handle), or null (e.g. an injected request). */
function socketFd(sock: Socket): number | null {
  const fd = (sock as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

/** The perl fallback, for tests that compare both askers. */
export const PERL_ASKER: [string, string[]] = [PERL_BIN, ['-e', PERL]];

/**
 * Resolves to the peer's credentials, or null when they cannot be had (not a unix socket, no
 * helper nor perl, the peer already gone). Must be called while the socket is open (e.g. on 'connection').
 */
export function peerCredentials(sock: Socket, timeoutMs = 5000, via: [string, string[]] = asker()): Promise<PeerCredentials | null> {
  const fd = socketFd(sock);
  if (fd === null) return Promise.resolve(null);
  return new Promise((resolve) => {
    let out = '';
    let child;
    try {
      child = spawn(via[0], via[1], { stdio: ['ignore', 'pipe', 'ignore', fd], timeout: timeoutMs });
    } catch {
      resolve(null);
      return;
    }
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.once('error', () => resolve(null));
    child.once('close', (code) => {
      const m = /^(-?\d+) (-?\d+) (-?\d+)\n$/.exec(out);
      if (code !== 0 || !m) return resolve(null);
      const [pid, uid, gid] = [Number(m[1]), Number(m[2]), Number(m[3])];
      // A peer outside our pid namespace shows pid 0; uid -1 means unknown.
      resolve(uid < 0 ? null : { pid, uid, gid });
    });
  });
}
