/** kiln image push|ls — the private registry (docs/registry.md); `kiln image build` is kilnd's. */
import { createReadStream, statSync } from 'node:fs';
import type { Command } from 'commander';
import { clientFrom } from '../connect.js';
import { fail, printJson } from '../output.js';

interface PushView {
  reference: string;
  digest: string;
  layers: number;
  bytes: number;
}

/** `NAME[:TAG]` → name and tag (default latest). */
function nameTag(ref: string): { name: string; tag: string } {
  const m = /^([a-z0-9][a-z0-9._/-]*?)(?::([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$/.exec(ref);
  if (!m) throw new Error(`${JSON.stringify(ref)} is not NAME[:TAG] (lower-case name)`);
  return { name: m[1] ?? '', tag: m[2] ?? 'latest' };
}

export function registerImageCommands(program: Command): void {
  const img = program.command('image').description('the private registry: push images that sandboxes pull as registry.kiln.internal/…');
  img
    .command('push <source> [name]')
    .description(
      'push an image: SOURCE is a docker-archive or OCI layout tar (`docker save` output), or with --from-sandbox ID an image in that sandbox\'s dockerd; NAME[:TAG] is its repository (a tenant\'s lands in <tenant>/NAME; the admin names it whole, e.g. library/NAME)',
    )
    .option('--from-sandbox <ID>', "push SOURCE, an image of this sandbox's dockerd (docker save in the sandbox)")
    .option('--json', 'print JSON')
    .action(async (source: string, name: string | undefined, o: { fromSandbox?: string; json?: boolean }, cmd: Command) => {
      try {
        const client = clientFrom(cmd);
        let r: PushView;
        if (o.fromSandbox) {
          const target = nameTag(name ?? source.replace(/^.*\//, ''));
          r = await client.call<PushView>('POST', '/v1/images/push-from-sandbox', { sandboxId: o.fromSandbox, image: source, name: target.name, tag: target.tag });
        } else {
          if (!name) throw new Error('name the repository: kiln image push ARCHIVE NAME[:TAG]');
          if (!statSync(source).isFile()) throw new Error(`${source} is not a file`);
          const target = nameTag(name);
          r = await client.pushImage<PushView>(target.name, target.tag, createReadStream(source));
        }
        if (o.json) return printJson(r);
        process.stdout.write(`${r.reference}\n`);
        process.stderr.write(`pushed ${r.layers} layer(s), ${r.bytes} bytes, ${r.digest}\n`);
      } catch (err) {
        fail(err);
      }
    });
  img
    .command('ls')
    .description('repositories of the private registry you may pull')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      try {
        const r = await clientFrom(cmd).call<{ host: string; repositories: string[] }>('GET', '/v1/images');
        if (o.json) return printJson(r);
        for (const repo of r.repositories) process.stdout.write(`${r.host}/${repo}\n`);
      } catch (err) {
        fail(err);
      }
    });
  img
    .command('build', { hidden: true })
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[args...]')
    .action(() => {
      process.stderr.write("kiln: `kiln image build` is now `kilnd image build` (the daemon's own binary)\n");
      process.exit(2);
    });
}
