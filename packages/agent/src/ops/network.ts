// sys.network: the guest's network identity, set at run time by the host (after a cold boot
// or a snapshot restore, whose NIC still carries the template's MAC). Idempotent.

import { execFile } from 'node:child_process';
import { readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { AgentError, type OpArgs } from '@kiln/protocol';
import { guestCtl, type GuestCtl } from '../guestctl.js';
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

type NetArgs = OpArgs<'sys.network'>;

/** With `ip`: one process spawn per change (the fallback when the helper is missing). */
async function configureWithIp(nic: string, args: NetArgs): Promise<void> {
  await ip(['link', 'set', 'dev', nic, 'down']);
  await ip(['link', 'set', 'dev', nic, 'address', args.mac]);
  if (args.mtu !== undefined) await ip(['link', 'set', 'dev', nic, 'mtu', String(args.mtu)]);
  await ip(['addr', 'flush', 'dev', nic]);
  await ip(['addr', 'add', args.address, 'dev', nic]);
  await ip(['link', 'set', 'dev', nic, 'up']);
  await ip(['neigh', 'flush', 'dev', nic]).catch(() => undefined);
  if (args.gateway) await ip(['route', 'replace', 'default', 'via', args.gateway, 'dev', nic]);
}

/**
 * With the resident helper: ioctls, no spawns. Taking the link down flushes its neighbours; the
 * address replaces the primary one (a clone's NIC carries at most the one it was snapshotted with).
 */
async function configureWithHelper(ctl: GuestCtl, nic: string, args: NetArgs): Promise<void> {
  const [addr, prefix = '32'] = args.address.split('/');
  await ctl.call(`link ${nic} down`);
  await ctl.call(`mac ${nic} ${args.mac}`);
  if (args.mtu !== undefined) await ctl.call(`mtu ${nic} ${args.mtu}`);
  await ctl.call(`addr ${nic} ${addr} ${prefix}`);
  await ctl.call(`link ${nic} up`);
  if (args.gateway) await ctl.call(`route-default ${args.gateway} ${nic}`);
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
  const ctl = guestCtl(ctx.session.config);
  if (ctl) await configureWithHelper(ctl, nic, args);
  else await configureWithIp(nic, args);
  const resolv = `${root}/etc/resolv.conf`;
  await rm(resolv, { force: true }); // may be a symlink into a read-only place
  await writeFile(resolv, [...args.dns.map((d) => `nameserver ${d}`), 'options timeout:2 attempts:3', ''].join('\n'));
  return { interface: nic, durationMs: performance.now() - t0 };
};
