/**
 * A snapshot's device state leaves QEMU as a stream, not as a file QEMU names: kilnd listens
 * on a unix socket it makes in the VMM's (sealed) directory, QEMU migrates to `unix:` that
 * socket, and kilnd writes what arrives into the state file it opened itself (O_EXCL, no
 * link followed) in a root-owned directory. Root never opens, renames or chowns a path the
 * VMM could have replaced. (`exec:` URIs die under QEMU's seccomp spawn=deny, FIELD-NOTES;
 * `fd:` needs SCM_RIGHTS, which Node's sockets cannot send.)
 */
import { constants, createWriteStream, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { KilnError } from '../errors.js';
import { openNoFollow } from './vmm-dir.js';

export interface StateReceiver {
  /** The URI to hand QMP `migrate`. */
  uri: string;
  /** Resolves with the bytes written once QEMU closed the stream and the file is on disk. */
  done: Promise<number>;
  /** Stops listening and removes the socket (idempotent; a pending `done` rejects). */
  close(): void;
}

/**
 * Listens at `socketPath` (whatever is there is unlinked first, not followed) for one
 * connection from the VMM and writes it to `stateFile`, which must not exist yet.
 */
export async function receiveState(socketPath: string, stateFile: string): Promise<StateReceiver> {
  rmSync(socketPath, { force: true });
  const fd = openNoFollow(stateFile, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  const out = createWriteStream('', { fd, autoClose: true });
  const server: Server = createServer({ pauseOnConnect: true });
  let conn: Socket | null = null;
  let closed = false;
  const done = new Promise<number>((resolve, reject) => {
    server.once('connection', (c: Socket) => {
      conn = c;
      server.close();
      pipeline(c, out).then(() => resolve(out.bytesWritten), (err: unknown) => reject(new KilnError('SNAPSHOT_FAILED', `receiving the device state failed: ${(err as Error).message}`, { cause: err })));
    });
    server.once('close', () => {
      if (conn === null) {
        out.destroy();
        reject(new KilnError('SNAPSHOT_FAILED', 'the VMM never connected to send its device state'));
      }
    });
  });
  done.catch(() => undefined); // observed by the caller; no unhandled rejection if it gave up first
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // The VMM user connects: the socket must be writable by it. Node chmods it by path, which
    // is safe only because the directory is sealed (root's; vmm-dir.ts) when QEMU is jailed.
    server.listen({ path: socketPath, writableAll: true }, () => resolve());
  });
  return {
    uri: `unix:${socketPath}`,
    done,
    close: () => {
      if (closed) return;
      closed = true;
      (conn as Socket | null)?.destroy();
      server.close();
      rmSync(socketPath, { force: true });
    },
  };
}
