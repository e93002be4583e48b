// sys.network: the guest's network identity, set at run time by the host (after a cold boot
// or a snapshot restore, whose NIC still carries the template's MAC). Idempotent.

import { execFile } from 'node:child_process';
import { readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { AgentError } from '@kiln/protocol';
import type { OpHandler } from './context.js';

const run = promisify(execFile);

/** The virtio-net interface (its driver link names virtio_net), or null. */
async function findNic(root: string): Promise<string | null> {
  const names = await readdir(`${root}/sys/class/net`).catch(() => [] as string[]);
  for (const name of names.sort()) {
    const driver = await readlink(`${root}/sys/class/net/${name}/device/driver`).catch(() => '');
    if (driver.endsWith('/virtio_net')) return name;
  }
  return null;
}

async function ip(args: string[]): Promise<void> {
  try {
    await run('ip', args, { timeout: 10_000 });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? (err as Error).message).trim();
    throw new AgentError('INTERNAL', `ip ${args.join(' ')}: ${stderr}`);
  }
}

async function sysctl(root: string, key: string, value: string): Promise<void> {
  await writeFile(`${root}/proc/sys/${key.replace(/\./g, '/')}`, value).catch(() => undefined);
}

export const network: OpHandler<'sys.network'> = async (ctx, args) => {
  const t0 = performance.now();
  const root = ctx.session.config.sysRoot;
  const deadline = Date.now() + (args.waitMs ?? 10_000);
  let nic = await findNic(root);
  while (!nic && Date.now() < deadline && !ctx.signal.aborted) {
    await new Promise((r) => setTimeout(r, 50));
    nic = await findNic(root);
  }
  if (!nic) throw new AgentError('NOT_FOUND', 'no virtio-net interface in the guest');
  for (const k of ['all', 'default', nic]) {
    await sysctl(root, `net.ipv6.conf.${k}.accept_ra`, '0');
    await sysctl(root, `net.ipv6.conf.${k}.disable_ipv6`, '1');
  }
  await ip(['link', 'set', 'dev', nic, 'down']);
  await ip(['link', 'set', 'dev', nic, 'address', args.mac]);
  if (args.mtu !== undefined) await ip(['link', 'set', 'dev', nic, 'mtu', String(args.mtu)]);
  await ip(['addr', 'flush', 'dev', nic]);
  await ip(['addr', 'add', args.address, 'dev', nic]);
  await ip(['link', 'set', 'dev', nic, 'up']);
  await ip(['neigh', 'flush', 'dev', nic]).catch(() => undefined);
  if (args.gateway) await ip(['route', 'replace', 'default', 'via', args.gateway, 'dev', nic]);
  const resolv = `${root}/etc/resolv.conf`;
  await rm(resolv, { force: true }); // may be a symlink into a read-only place
  await writeFile(resolv, [...args.dns.map((d) => `nameserver ${d}`), 'options timeout:2 attempts:3', ''].join('\n'));
  return { interface: nic, durationMs: performance.now() - t0 };
};
