/**
 * kiln template build NAME [-f Dockerfile] [CONTEXT] | --from IMAGE: the context (or the image
 * archive) goes to kilnd as a tar stream; the build's events come back as NDJSON and are printed
 * as they arrive (steps and the build's own output on stderr, the result on stdout).
 */
import type { Command } from 'commander';
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { basename, dirname, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { KilnError } from '@kiln/sdk/errors';
import { lines } from '../client.js';
import { fail, printJson } from '../output.js';
import { clientFrom } from './sandbox.js';
import { policyFromOptions, addPolicyOptions, type PolicyOpts } from './net.js';

interface BuildOpts extends PolicyOpts {
  file?: string;
  from?: string;
  startCmd?: string;
  readyPort?: string;
  readyCmd?: string;
  readyTimeout?: string;
  memory?: string;
  cpus?: string;
  disk?: string;
  json?: boolean;
  quiet?: boolean;
  pull?: string[];
}

/** The context as a tar stream; a Dockerfile outside it is added as .kiln.Dockerfile. Returns the Dockerfile's path in the tar. */
function contextTar(context: string, file: string | undefined): { stream: Readable; dockerfile: string } {
  const ctx = resolve(context);
  if (!existsSync(ctx) || !statSync(ctx).isDirectory()) throw new Error(`build context ${context} is not a directory`);
  const df = resolve(file ?? `${ctx}/Dockerfile`);
  if (!existsSync(df)) throw new Error(`no Dockerfile at ${file ?? `${context}/Dockerfile`}`);
  const rel = relative(ctx, df);
  const inside = !rel.startsWith('..') && !rel.startsWith(sep);
  const args = ['-c', '-C', ctx, '.'];
  if (!inside) args.push('-C', dirname(df), '--transform', `s|^${basename(df).replace(/[.[\]*^$\\|]/g, '\\$&')}$|.kiln.Dockerfile|`, basename(df));
  const child = spawn('tar', args, { stdio: ['ignore', 'pipe', 'inherit'] });
  child.on('close', (code) => {
    if (code !== 0) child.stdout.destroy(new Error(`tar of ${context} failed (exit ${code})`));
  });
  return { stream: child.stdout, dockerfile: inside ? rel : '.kiln.Dockerfile' };
}

function argvOf(text: string): string[] {
  const t = text.trim();
  if (t.startsWith('[')) return JSON.parse(t) as string[];
  return ['/bin/sh', '-c', t];
}

export function registerTemplateBuild(tpl: Command): void {
  const build = tpl
    .command('build <name> [context]')
    .description('build a template from a Dockerfile (run in a builder sandbox) or a container image (--from); its start command runs and its ready check passes before the snapshot')
    .option('-f, --file <Dockerfile>', 'the Dockerfile (default CONTEXT/Dockerfile)')
    .option('--from <IMAGE>', 'an image archive file (docker save / OCI) or an image reference the builder pulls, instead of a Dockerfile')
    .option('--start-cmd <CMD>', 'start command (a shell line, or a JSON array); default the image ENTRYPOINT + CMD; "" = none')
    .option('--ready-port <PORT>', 'a TCP port that must be listening before the snapshot (default: the lowest EXPOSEd port)')
    .option('--ready-cmd <CMD>', 'a command (shell line or JSON array) that must exit 0 before the snapshot')
    .option('--ready-timeout <SECONDS>', 'how long the ready check may take (default 120)')
    .option('--pull <IMAGE>', "pre-pull an image into the template's dockerd (repeatable): registry.kiln.internal/<tenant>/…, or a public one through kilnd's pull-through cache; `docker run` of it then needs no registry", (v: string, acc: string[] = []) => [...acc, v])
    .option('--memory <MiB>', "the template's guest memory (default 1024)")
    .option('--cpus <N>', 'its virtual CPUs (default 2)')
    .option('--disk <GiB>', 'its disk, which holds the image filesystem (default 10)')
    .option('-q, --quiet', "don't print the build's output, only its steps")
    .option('--json', 'print the template as JSON');
  addPolicyOptions(build).action(async (name: string, context: string | undefined, o: BuildOpts, cmd: Command) => {
    try {
      const q = new URLSearchParams({ name });
      let body: Readable | undefined;
      if (o.from !== undefined) {
        if (existsSync(o.from)) {
          q.set('from', 'archive');
          body = createReadStream(o.from);
        } else q.set('from', o.from);
      } else {
        const tar = contextTar(context ?? '.', o.file);
        body = tar.stream;
        q.set('dockerfile', tar.dockerfile);
      }
      if (o.startCmd !== undefined) q.set('startCmd', JSON.stringify(o.startCmd.trim() === '' ? [] : argvOf(o.startCmd)));
      if (o.readyCmd !== undefined) q.set('readyCmd', JSON.stringify(argvOf(o.readyCmd)));
      if (o.readyPort !== undefined) q.set('readyPort', String(Number(o.readyPort)));
      if (o.pull?.length) q.set('pull', JSON.stringify(o.pull));
      if (o.readyTimeout !== undefined) q.set('readyTimeoutMs', String(Math.round(Number(o.readyTimeout) * 1000)));
      for (const [opt, field] of [['memory', 'memoryMiB'], ['cpus', 'vcpus'], ['disk', 'diskGiB']] as const) {
        const v = o[opt];
        if (v === undefined) continue;
        if (!/^\d+$/.test(v)) throw new Error(`--${opt} must be a whole number (got ${JSON.stringify(v)})`);
        q.set(field, v);
      }
      const policy = policyFromOptions(o);
      if (policy) q.set('network', JSON.stringify(policy));
      const client = clientFrom(cmd);
      const res = await client.check(await client.raw({ method: 'POST', path: `/v1/templates/build?${q.toString()}`, ...(body ? { body } : {}) }));
      for await (const text of lines(res)) {
        if (!text.trim()) continue;
        const ev = JSON.parse(text) as { type: string; step?: string; detail?: string; line?: string; bytes?: number; template?: Record<string, unknown>; error?: { code: string; message: string; details?: Record<string, unknown> } };
        if (ev.type === 'step') process.stderr.write(`==> ${ev.step}${ev.detail ? `: ${ev.detail}` : ''}\n`);
        else if (ev.type === 'log' && !o.quiet) process.stderr.write(`${ev.line}\n`);
        else if (ev.type === 'progress') process.stderr.write(`    ${ev.step}: ${((ev.bytes ?? 0) / 2 ** 20).toFixed(1)} MiB\n`);
        else if (ev.type === 'error' && ev.error) throw new KilnError(ev.error.code, ev.error.message, { status: 0, ...(ev.error.details ? { details: ev.error.details } : {}) });
        else if (ev.type === 'done' && ev.template) {
          const t = ev.template as { name: string; version: number; buildMs: number; sizeBytes: number | null };
          if (o.json) printJson(t);
          else process.stdout.write(`${t.name} version ${t.version} built in ${(t.buildMs / 1000).toFixed(1)} s (${((t.sizeBytes ?? 0) / 2 ** 20).toFixed(0)} MiB)\n`);
          return;
        }
      }
      throw new Error('the build ended without a result');
    } catch (err) {
      fail(err);
    }
  });
}
