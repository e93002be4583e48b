/**
 * kiln key create --tenant NAME [--scope S]… [--name LABEL] [--e2b] / kiln key ls [--tenant NAME] / kiln key revoke ID
 * kiln tenant set NAME [--max-sandboxes N] [--max-memory MiB] [--max-vcpus N] [--creates-per-minute N] [--max-volume-gib GiB] / kiln tenant ls
 * (admin only: over the unix socket.)
 */
import type { Command } from 'commander';
import { ago, fail, printJson, table } from '../output.js';
import { clientFrom } from './sandbox.js';

interface KeyView {
  id: string;
  tenant: string;
  name: string | null;
  scopes: string[];
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
  key?: string;
}
interface TenantView {
  name: string;
  limits: { maxSandboxes: number; maxMemoryMiB: number; maxVcpus: number; createsPerMinute: number; maxVolumeGiB?: number };
  usage: { sandboxes: number; memoryMiB: number; vcpus: number; volumeBytes?: number };
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
const whole = (flag: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new Error(`${flag} must be a whole number (got ${v})`);
  return Number(v);
};

export function registerKeyCommands(program: Command): void {
  const key = program.command('key').description('API keys for the TCP listener (admin only)');
  key
    .command('create')
    .description('create an API key for a tenant; the key is printed once and never again')
    .requiredOption('--tenant <NAME>', 'the tenant the key acts for')
    .option('--scope <SCOPE>', 'sandboxes (default), read-only, or admin (acts as the admin: for the web dashboard); repeatable', collect)
    .option('--name <LABEL>', 'a label for the key')
    .option('--e2b', "make an E2B-shaped key (e2b_…) for the E2B SDK's E2B_API_KEY (docs/e2b.md)")
    .option('--json', 'print JSON')
    .action(async (o: { tenant: string; scope?: string[]; name?: string; e2b?: boolean; json?: boolean }, cmd: Command) => {
      try {
        const k = await clientFrom(cmd).call<KeyView>('POST', '/v1/keys', { tenant: o.tenant, ...(o.scope ? { scopes: o.scope } : {}), ...(o.name ? { name: o.name } : {}), ...(o.e2b ? { e2b: true } : {}) });
        if (o.json) return printJson(k);
        process.stdout.write(`${k.key ?? ''}\n`);
        process.stderr.write(`key ${k.id} for tenant ${k.tenant} (${k.scopes.join(',')}); store it now: kilnd keeps only its hash\n`);
      } catch (err) {
        fail(err);
      }
    });
  key
    .command('ls')
    .description('list API keys (never their values)')
    .option('--tenant <NAME>', 'only this tenant')
    .option('--json', 'print JSON')
    .action(async (o: { tenant?: string; json?: boolean }, cmd: Command) => {
      try {
        const { keys } = await clientFrom(cmd).call<{ keys: KeyView[] }>('GET', `/v1/keys${o.tenant ? `?tenant=${encodeURIComponent(o.tenant)}` : ''}`);
        if (o.json) return printJson(keys);
        const rows = keys.map((k) => [k.id, k.tenant, k.scopes.join(','), k.name ?? '-', ago(k.createdAt), k.revokedAt ? `revoked ${ago(k.revokedAt)}` : 'active', ago(k.lastUsedAt)]);
        process.stdout.write(table([['ID', 'TENANT', 'SCOPES', 'NAME', 'CREATED', 'STATUS', 'LAST USED'], ...rows]));
      } catch (err) {
        fail(err);
      }
    });
  key
    .command('revoke <id>')
    .description('revoke an API key (at once: its next request is 401)')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      try {
        const k = await clientFrom(cmd).call<KeyView>('DELETE', `/v1/keys/${encodeURIComponent(id)}`);
        process.stderr.write(`key ${k.id} (tenant ${k.tenant}) revoked\n`);
      } catch (err) {
        fail(err);
      }
    });

  const tenant = program.command('tenant').description('tenants and their limits (admin only)');
  tenant
    .command('set <name>')
    .description("set a tenant's limits (unset ones keep their value)")
    .option('--max-sandboxes <N>', 'concurrent sandboxes')
    .option('--max-memory <MiB>', 'total guest memory of its sandboxes')
    .option('--max-vcpus <N>', 'total vCPUs of its sandboxes')
    .option('--creates-per-minute <N>', 'creates in any 60 s')
    .option('--max-volume-gib <GiB>', "its volumes' sizes together (lowering it below the use refuses new volumes, removes none)")
    .option('--json', 'print JSON')
    .action(async (name: string, o: { maxSandboxes?: string; maxMemory?: string; maxVcpus?: string; createsPerMinute?: string; maxVolumeGib?: string; json?: boolean }, cmd: Command) => {
      try {
        const body = Object.fromEntries(
          Object.entries({
            maxSandboxes: whole('--max-sandboxes', o.maxSandboxes),
            maxMemoryMiB: whole('--max-memory', o.maxMemory),
            maxVcpus: whole('--max-vcpus', o.maxVcpus),
            createsPerMinute: whole('--creates-per-minute', o.createsPerMinute),
            maxVolumeGiB: whole('--max-volume-gib', o.maxVolumeGib),
          }).filter(([, v]) => v !== undefined),
        );
        const t = await clientFrom(cmd).call<TenantView>('PUT', `/v1/tenants/${encodeURIComponent(name)}`, body);
        if (o.json) return printJson(t);
        process.stdout.write(table(tenantRows([t])));
      } catch (err) {
        fail(err);
      }
    });
  tenant
    .command('ls')
    .description('tenants, their limits and usage')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      try {
        const { tenants } = await clientFrom(cmd).call<{ tenants: TenantView[] }>('GET', '/v1/tenants');
        if (o.json) return printJson(tenants);
        process.stdout.write(table(tenantRows(tenants)));
      } catch (err) {
        fail(err);
      }
    });
}

function tenantRows(ts: TenantView[]): string[][] {
  return [
    ['TENANT', 'SANDBOXES', 'MEMORY MiB', 'VCPUS', 'CREATES/MIN', 'VOLUMES GiB'],
    ...ts.map((t) => [
      t.name,
      `${t.usage.sandboxes}/${t.limits.maxSandboxes}`,
      `${t.usage.memoryMiB}/${t.limits.maxMemoryMiB}`,
      `${t.usage.vcpus}/${t.limits.maxVcpus}`,
      String(t.limits.createsPerMinute),
      t.limits.maxVolumeGiB === undefined ? '-' : `${Number(((t.usage.volumeBytes ?? 0) / 1024 ** 3).toFixed(1))}/${t.limits.maxVolumeGiB}`,
    ]),
  ];
}
