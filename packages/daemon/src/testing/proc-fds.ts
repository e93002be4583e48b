/** For tests that look at a process's open file descriptors. */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { sleep } from '../util/proc.js';

/**
 * The fds of `pid` once it has settled: sleeping, with the same fds twice in a row (right
 * after its exec, the dynamic loader briefly holds the libraries it maps open).
 */
export async function settledFds(pid: number): Promise<Map<string, string>> {
  const target = (n: string) => {
    try {
      return [[n, readlinkSync(`/proc/${pid}/fd/${n}`)] as const];
    } catch {
      return []; // closed since the listing
    }
  };
  const read = () => new Map(readdirSync(`/proc/${pid}/fd`).flatMap(target));
  const state = () => /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
  let last = read();
  for (let i = 0; i < 250; i++) {
    await sleep(20);
    const now = read();
    if (state() === 'S' && [...now].join() === [...last].join()) return now;
    last = now;
  }
  return last;
}
