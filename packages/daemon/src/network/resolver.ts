/**
 * The sandbox resolver: one dnsmasq per sandbox, inside its netns, listening only on the
 * gateway address. It forwards to the configured upstream servers, logs every query to
 * `dns.log` in the sandbox's run directory, answers NXDOMAIN for denied domains and adds the
 * addresses it returns for allowed domains to the policy's nft sets (dnsmasq's nftset), so a
 * domain allow-list follows the answers as they change. It daemonizes (it outlives a kilnd
 * restart, like the VM) and drops to nobody, keeping only CAP_NET_ADMIN for the nft sets.
 */
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { runDirLayout } from '../sandbox/run-dir.js';
import { readCmdline, sleep } from '../util/proc.js';
import { hostCmd } from './host-cmd.js';
import type { NetNames } from './names.js';
import { domainGroups } from './nft-sandbox.js';
import type { NetworkPolicy } from './policy.js';

export interface ResolverParams {
  names: NetNames;
  runDir: string;
  gateway: string;
  upstream: string[];
  policy: NetworkPolicy;
}

export const resolverPaths = (runDir: string) => runDirLayout(runDir).resolver;

/** Query logs are capped: past this size dns.log becomes dns.log.1 (replacing it). Default 4 MiB. */
export const DNS_LOG_MAX_BYTES = 4 * 1024 * 1024;

/** Rotates the query log once it passes `maxBytes` (dnsmasq reopens its log on SIGUSR2). */
export async function capResolverLog(runDir: string, maxBytes = DNS_LOG_MAX_BYTES): Promise<boolean> {
  const paths = resolverPaths(runDir);
  const size = (await stat(paths.log).catch(() => null))?.size ?? 0;
  if (size <= maxBytes) return false;
  await rename(paths.log, paths.oldLog);
  const pid = await runningPid(runDir);
  if (pid !== null) process.kill(pid, 'SIGUSR2');
  return true;
}

/** The last `maxBytes` of the query log (across the rotation). */
export async function readResolverLog(runDir: string, maxBytes: number): Promise<string> {
  const paths = resolverPaths(runDir);
  const cur = await readFile(paths.log, 'utf8').catch(() => '');
  if (cur.length >= maxBytes) return cur.slice(-maxBytes);
  const old = await readFile(paths.oldLog, 'utf8').catch(() => '');
  return (old + cur).slice(-maxBytes);
}

export function renderResolverConf(p: ResolverParams): string {
  const paths = resolverPaths(p.runDir);
  const lines = [
    `# kiln sandbox resolver for ${p.names.netns} (generated)`,
    `listen-address=${p.gateway}`,
    'bind-interfaces',
    'no-resolv',
    'no-hosts',
    'no-poll',
    'user=nobody',
    'group=nogroup',
    'cache-size=1000',
    'log-queries=extra',
    `log-facility=${paths.log}`,
    `pid-file=${paths.pid}`,
    ...p.upstream.map((s) => `server=${s}`),
  ];
  for (const g of domainGroups(p.policy)) lines.push(`nftset=/${g.domains.join('/')}/4#inet#${p.names.table}#${g.set}`);
  for (const r of p.policy.deny) if (r.domain) lines.push(`address=/${r.domain}/`);
  // The private registry answers on the gateway address (registry/service.ts).
  lines.push(`address=/registry.kiln.internal/${p.gateway}`);
  return lines.join('\n') + '\n';
}

async function runningPid(runDir: string): Promise<number | null> {
  const paths = resolverPaths(runDir);
  const pid = Number((await readFile(paths.pid, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  const cmd = readCmdline(pid);
  return cmd?.some((a) => a.includes(paths.conf)) ? pid : null;
}

/** Stops the resolver (if its pid file still names it) and waits until it is gone. */
export async function stopResolver(runDir: string): Promise<void> {
  const pid = await runningPid(runDir);
  if (pid !== null) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
    for (let i = 0; i < 100 && readCmdline(pid) !== null; i++) await sleep(20);
    if (readCmdline(pid) !== null) process.kill(pid, 'SIGKILL');
  }
  await rm(resolverPaths(runDir).pid, { force: true });
}

/** (Re)starts the resolver with the current policy. */
export async function startResolver(p: ResolverParams): Promise<void> {
  await stopResolver(p.runDir);
  const paths = resolverPaths(p.runDir);
  await writeFile(paths.conf, renderResolverConf(p), { mode: 0o644 });
  await hostCmd('dnsmasq', [`--conf-file=${paths.conf}`], { netns: p.names.netns });
}
