/** kiln template create|build|ls|rm, and kiln pause|resume|snapshot ID. */
import type { Command } from 'commander';
import { fail, printJson, table } from '../output.js';
import { clientFrom } from './sandbox.js';
import { progress } from '../progress.js';
import { registerTemplateBuild } from './template-build.js';

interface TemplateView {
  name: string;
  key: string;
  source: string;
  parentSandbox: string | null;
  memoryMiB: number;
  vcpus: number;
  diskGiB: number;
  stateBytes: number;
  sizeBytes?: number | null;
  version?: number;
  tenant?: string | null;
  buildMs: number;
  createdAt: string;
}

function intOpt(name: string) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new Error(`--${name} must be a whole number (got ${JSON.stringify(v)})`);
    return Number(v);
  };
}

export function registerTemplateCommands(program: Command): void {
  const tpl = program.command('template').description('templates: snapshots of a booted, docker-ready VM that sandboxes restore from');
  tpl
    .command('create <name>')
    .description('boot a VM of this shape, wait for dockerd, and snapshot it')
    .option('--memory <MiB>', 'guest memory (default 1024)', intOpt('memory'))
    .option('--cpus <N>', 'virtual CPUs (default 2)', intOpt('cpus'))
    .option('--disk <GiB>', 'scratch disk (default 10)', intOpt('disk'))
    .option('--json', 'print JSON')
    .action(async (name: string, o: { memory?: number; cpus?: number; disk?: number; json?: boolean }, cmd: Command) => {
      try {
        const body: Record<string, unknown> = { name };
        if (o.memory !== undefined) body.memoryMiB = o.memory;
        if (o.cpus !== undefined) body.vcpus = o.cpus;
        if (o.disk !== undefined) body.diskGiB = o.disk;
        const shown = progress(`building template ${name}`);
        shown.step('booting a VM and waiting for dockerd');
        const t = await clientFrom(cmd).call<TemplateView>('POST', '/v1/templates', body).finally(() => shown.done());
        if (o.json) return printJson(t);
        process.stdout.write(`${t.name} (${t.key}) built in ${(t.buildMs / 1000).toFixed(1)} s\n`);
      } catch (err) {
        fail(err);
      }
    });
  registerTemplateBuild(tpl);
  tpl
    .command('ls')
    .description('list templates')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      try {
        const { templates } = await clientFrom(cmd).call<{ templates: TemplateView[] }>('GET', '/v1/templates');
        if (o.json) return printJson(templates);
        const rows = [['NAME', 'VERSION', 'SOURCE', 'SHAPE', 'SIZE', 'CREATED', 'OWNER']];
        for (const t of templates) {
          const source = t.source === 'snapshot' ? `snapshot of ${t.parentSandbox}` : t.source;
          const size = t.sizeBytes ? `${(t.sizeBytes / 2 ** 20).toFixed(0)} MiB` : '-';
          rows.push([t.name, String(t.version ?? 1), source, `${t.memoryMiB}M/${t.vcpus}c/${t.diskGiB}G`, size, t.createdAt, t.tenant ?? 'shared']);
        }
        process.stdout.write(table(rows));
      } catch (err) {
        fail(err);
      }
    });
  tpl
    .command('rm <name>')
    .description('remove a template (every version of it): your own; the admin a shared one, or with --tenant that tenant\'s')
    .option('--tenant <NAME>', "the admin's only: remove this tenant's template of the name")
    .action(async (name: string, o: { tenant?: string }, cmd: Command) => {
      try {
        await clientFrom(cmd).call('DELETE', `/v1/templates/${encodeURIComponent(name)}${o.tenant ? `?tenant=${encodeURIComponent(o.tenant)}` : ''}`);
        process.stdout.write(`${name}\n`);
      } catch (err) {
        fail(err);
      }
    });

  for (const verb of ['pause', 'resume'] as const) {
    program
      .command(`${verb} <id>`)
      .description(verb === 'pause' ? 'pause a sandbox (processes and files are kept)' : 'resume a paused sandbox')
      .action(async (id: string, _o: unknown, cmd: Command) => {
        try {
          const sb = await clientFrom(cmd).call<{ id: string; state: string }>('POST', `/v1/sandboxes/${encodeURIComponent(id)}/${verb}`);
          process.stdout.write(`${sb.id} ${sb.state}\n`);
        } catch (err) {
          fail(err);
        }
      });
  }

  program
    .command('snapshot <id>')
    .description('snapshot a sandbox as a template; `kiln create --template NAME` forks from it')
    .requiredOption('--name <NAME>', 'name of the new template')
    .action(async (id: string, o: { name: string }, cmd: Command) => {
      try {
        const t = await clientFrom(cmd).call<TemplateView>('POST', `/v1/sandboxes/${encodeURIComponent(id)}/snapshot`, { name: o.name });
        process.stdout.write(`${t.name}\n`);
      } catch (err) {
        fail(err);
      }
    });
}
