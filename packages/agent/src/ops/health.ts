// health: how the guest is doing (uptime, load, memory, whether dockerd answers). Kept cheap,
// because kilnd's heartbeat asks every running guest every few seconds and, under TCG, every
// wake-up of an idle guest costs host CPU (docs/fast-start.md, "Idle CPU"): /proc is read
// synchronously (such a read never blocks; through the thread pool each file is four or five
// hand-offs between threads), and a dockerd that answered is asked again only after
// DOCKER_RECHECK_MS (a ping wakes a dozen dockerd and agent threads).

import { readFileSync } from 'node:fs';
import os from 'node:os';
import type { OpHandler } from './context.js';
import { pingDocker } from './docker.js';

/** How long a dockerd that answered `/_ping` counts as ready before it is pinged again. */
export const DOCKER_RECHECK_MS = 30_000;

/** Docker socket → when its dockerd last answered (performance.now()). */
const dockerAnsweredAt = new Map<string, number>();

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function dockerAnswers(socket: string): Promise<boolean> {
  const at = dockerAnsweredAt.get(socket);
  if (at !== undefined && performance.now() - at < DOCKER_RECHECK_MS) return true;
  const ok = await pingDocker(socket, 300);
  if (ok) dockerAnsweredAt.set(socket, performance.now());
  else dockerAnsweredAt.delete(socket);
  return ok;
}

export const health: OpHandler<'health'> = async (ctx) => {
  const dockerReady = await dockerAnswers(ctx.session.config.dockerSocket);
  const uptimeSec = Number.parseFloat(readProc('/proc/uptime') ?? '');
  const meminfo = readProc('/proc/meminfo');
  const kib = (field: string, fallbackBytes: number) => {
    const m = meminfo?.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : Math.floor(fallbackBytes / 1024);
  };
  const [l1, l5, l15] = os.loadavg();
  return {
    uptimeMs: Math.round((Number.isFinite(uptimeSec) ? uptimeSec : os.uptime()) * 1000),
    loadavg: [l1 ?? 0, l5 ?? 0, l15 ?? 0],
    memTotalKiB: kib('MemTotal', os.totalmem()),
    memAvailableKiB: kib('MemAvailable', os.freemem()),
    dockerReady,
  };
};
