/** kiln create / ls / inspect / rm / logs / events. */
import type { Command } from 'commander';
import { clientFrom } from '../connect.js';
import { progress } from '../progress.js';
import { parseDuration, parseKeyValues } from '../duration.js';
import { ago, fail, printJson, table } from '../output.js';
import { addPolicyOptions, policyFromOptions, type PolicyOpts } from './net.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export { clientFrom };

/** `NAME:/path[:ro|:rw]` → a create's volume entry. */
export function parseVolumeOpt(v: string): { name: string; path: string; readOnly?: boolean } {
  const m = /^([^:]+):(\/[^:]*)(?::(ro|rw))?$/.exec(v);
  if (!m) throw new Error(`--volume must be NAME:/path or NAME:/path:ro (got ${JSON.stringify(v)})`);
  return { name: m[1] ?? '', path: m[2] ?? '', ...(m[3] === 'ro' ? { readOnly: true } : {}) };
}

function intOpt(name: string) {
  return (v: string): number => {
    if (!/^-?\d+$/.test(v)) throw new Error(`--${name} must be an integer (got ${JSON.stringify(v)})`);
    return Number(v);
  };
}

export function registerSandboxCommands(program: Command): void {
  const create = program
    .command('create')
    .description('create a sandbox; prints its id as the last line on stdout')
    .option('--memory <MiB>', 'guest memory in MiB (default 1024)', intOpt('memory'))
    .option('--cpus <N>', 'virtual CPUs (default 2)', intOpt('cpus'))
    .option('--disk <GiB>', 'scratch disk size in GiB (default 10)', intOpt('disk'))
    .option('--timeout <DURATION>', 'lifetime, e.g. 30m, 2h, 0 for none (default 1h)')
    .option('--idle-timeout <DURATION>', 'destroy after this long without an exec or file call, 0 for never (default 0)')
    .option('--auto-pause <DURATION>', 'pause (memory kept, no CPU) after this long idle, e.g. 10s, 5m; the next exec, file call or proxied request wakes it (default: never)')
    .option('--env <K=V>', 'environment for every exec (repeatable)', collect)
    .option('--label <K=V>', 'label (repeatable)', collect)
    .option('--template <NAME>', 'start from a named template, e.g. a snapshot of another sandbox (its shape applies)')
    .option('--volume <NAME:/PATH[:ro]>', 'attach a persistent volume at PATH (repeatable; :ro = read-only)', collect)
    .option('--json', 'print the sandbox as JSON');
  addPolicyOptions(create).action(async (o: PolicyOpts & { memory?: number; cpus?: number; disk?: number; timeout?: string; idleTimeout?: string; autoPause?: string; env?: string[]; label?: string[]; template?: string; volume?: string[]; json?: boolean }, cmd: Command) => {
      try {
        const client = clientFrom(cmd);
        const body: Record<string, unknown> = {};
        if (o.memory !== undefined) body.memoryMiB = o.memory;
        if (o.cpus !== undefined) body.vcpus = o.cpus;
        if (o.disk !== undefined) body.diskGiB = o.disk;
        if (o.timeout !== undefined) body.timeoutMs = parseDuration(o.timeout);
        if (o.idleTimeout !== undefined) body.idleTimeoutMs = parseDuration(o.idleTimeout);
        if (o.autoPause !== undefined) body.autoPauseMs = parseDuration(o.autoPause);
        if (o.env) body.env = parseKeyValues(o.env, '--env');
        if (o.label) body.labels = parseKeyValues(o.label, '--label');
        if (o.template) body.template = o.template;
        if (o.volume) body.volumes = o.volume.map(parseVolumeOpt);
        const network = policyFromOptions(o);
        if (network) body.network = network;
        const t0 = Date.now();
        let sb = await client.create(body, false);
        const shown = progress(`creating ${sb.id}`);
        while (sb.state === 'creating') {
          shown.step(sb.step ?? 'queued');
          await sleep(250);
          sb = await client.get(sb.id);
        }
        shown.done();
        if (sb.state !== 'running') {
          const e = sb.error;
          process.stderr.write(`kiln: create failed${e?.step ? ` at step ${e.step}` : ''}: ${e?.message ?? sb.state} (${e?.code ?? 'CREATE_FAILED'})\n`);
          process.exit(1);
        }
        if (process.stderr.isTTY) process.stderr.write(`created ${sb.id} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
        if (o.json) printJson(sb);
        process.stdout.write(`${sb.id}\n`);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('ls')
    .description('list sandboxes')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      try {
        const list = await clientFrom(cmd).list();
        if (o.json) return printJson(list);
        // The TENANT column only once some sandbox has one (kilnd with API keys in use).
        const tenants = list.some((s) => s.tenant);
        const rows = [['ID', 'STATE', 'MEMORY', 'CPUS', 'CREATED', ...(tenants ? ['TENANT'] : []), 'LABELS']];
        for (const s of list) {
          rows.push([s.id, s.pausedBy === 'auto' ? 'paused(auto)' : s.state, `${s.spec.memoryMiB}M`, `${s.spec.vcpus}`, ago(s.createdAt), ...(tenants ? [s.tenant ?? '-'] : []), Object.entries(s.spec.labels).map(([k, v]) => `${k}=${v}`).join(',')]);
        }
        process.stdout.write(table(rows));
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('inspect <id>')
    .description('show a sandbox as JSON')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      try {
        printJson(await clientFrom(cmd).get(id));
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('rm <ids...>')
    .description('destroy sandboxes and everything they own')
    .action(async (ids: string[], _o: unknown, cmd: Command) => {
      const client = clientFrom(cmd);
      let failed = false;
      for (const id of ids) {
        try {
          await client.destroy(id);
          process.stdout.write(`${id}\n`);
        } catch (err) {
          failed = true;
          process.stderr.write(`kiln: ${id}: ${(err as Error).message}\n`);
        }
      }
      if (failed) process.exit(1);
    });

  // kiln events: commands/lifecycle.ts
}
