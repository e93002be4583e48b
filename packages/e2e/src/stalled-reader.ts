/**
 * A client that reads nothing while the guest writes as fast as it can: `cat /dev/zero`
 * through the exec API, with the HTTP response paused from its first byte. Used by
 * stalled-reader.test.ts (behaviour) and `npm run bench` (the figure).
 */
import { readFileSync } from 'node:fs';
import { request, type IncomingMessage } from 'node:http';
import type { DaemonFixture } from './harness.js';

export interface StalledReaderResult {
  /** kilnd's VmRSS before the stall and after it, MiB. */
  rssBeforeMiB: number;
  rssAfterMiB: number;
  /** Where the guest's `cat` sleeps in the kernel after the stall (writing its stdout, a pipe or libuv's socketpair). */
  wchan: string;
  /** Bytes the guest's `cat` had written by then (/proc/PID/io wchar). */
  writtenBytes: number;
  /** The same, `settleMs` later: equal when the command is stalled, not merely slow. */
  writtenLaterBytes: number;
}

/** VmRSS of a process in MiB (/proc/PID/status). */
export function vmRssMiB(pid: number): number {
  const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  return kb / 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts `cat /dev/zero` and pauses the response at once; the caller destroys it. */
export function stalledExec(fx: DaemonFixture, id: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: fx.socket, method: 'POST', path: `/v1/sandboxes/${id}/exec`, headers: { 'content-type': 'application/json' } }, (res) => {
      res.pause();
      resolve(res);
    });
    req.on('error', reject);
    req.end(JSON.stringify({ argv: ['cat', '/dev/zero'] }));
  });
}

/** The guest's `cat`: its kernel wait channel and bytes written, or null while it is not running. */
export async function guestCat(fx: DaemonFixture, id: string): Promise<{ wchan: string; writtenBytes: number } | null> {
  const r = await fx.sh(id, 'p=$(pgrep -xo cat) || exit 3; echo "$(cat /proc/$p/wchan) $(sed -n "s/^wchar: //p" /proc/$p/io)"');
  if (r.code === 3) return null;
  const [wchan = '', written = 'NaN'] = r.out.trim().split(/\s+/);
  return { wchan, writtenBytes: Number(written) };
}

/** Runs the stalled reader for `stallMs` (then `settleMs` more) against sandbox `id` of kilnd `fx`. */
export async function stalledReader(fx: DaemonFixture, id: string, stallMs: number, settleMs = 3000): Promise<StalledReaderResult> {
  const pid = fx.pid;
  if (pid === undefined) throw new Error('kilnd is not running');
  await fx.sh(id, 'true'); // the exec path is warm: what follows measures the stream, not first use
  const rssBeforeMiB = vmRssMiB(pid);
  const res = await stalledExec(fx, id);
  try {
    await sleep(stallMs);
    const cat = await guestCat(fx, id);
    if (!cat) throw new Error('the guest’s cat is not running');
    await sleep(settleMs);
    const later = await guestCat(fx, id);
    const rssAfterMiB = vmRssMiB(pid);
    return { rssBeforeMiB, rssAfterMiB, ...cat, writtenLaterBytes: later?.writtenBytes ?? NaN };
  } finally {
    res.destroy();
  }
}
