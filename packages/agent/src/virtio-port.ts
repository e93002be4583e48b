// Finding a virtio-serial port by name: the guest has no udev, so the port's device node is
// found through /sys/class/virtio-ports/*/name. Used by the agent's own port (serve-port.ts)
// and by the guest helper's (guestctl.ts); a leaf module, so neither imports the other.

import { readdir, readFile } from 'node:fs/promises';
import { log } from './log.js';

/** The agent's port. */
export const PORT_NAME = 'org.kiln.agent';
const DISCOVER_POLL_MS = 200;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The device path of the virtio port named `name`, or null if there is none (now). */
export async function findPortOnce(name: string, sysDir = '/sys/class/virtio-ports'): Promise<string | null> {
  const dirs = await readdir(sysDir).catch(() => [] as string[]);
  for (const dir of dirs) {
    const portName = await readFile(`${sysDir}/${dir}/name`, 'utf8').catch(() => '');
    if (portName.trim() === name) return `/dev/${dir}`;
  }
  return null;
}

/** Waits until a virtio port named `name` shows up and returns its device path. */
export async function findPort(name = PORT_NAME, sysDir = '/sys/class/virtio-ports'): Promise<string> {
  let logged = false;
  for (;;) {
    const found = await findPortOnce(name, sysDir);
    if (found) return found;
    if (!logged) log('info', 'waiting for the virtio-serial port', { name });
    logged = true;
    await sleep(DISCOVER_POLL_MS);
  }
}
