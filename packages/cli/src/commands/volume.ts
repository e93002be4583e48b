/** kiln volume create|ls|inspect|rm|cp — persistent volumes (docs/volumes.md). */
import { spawn } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { targetFrom } from '../connect.js';
import { ago, fail, printJson, table } from '../output.js';

interface VolumeView {
  name: string;
  tenant: string | null;
  sizeBytes: number;
  createdAt: string;
  attachedTo: Array<{ sandboxId: string; readOnly: boolean; path: string }>;
}

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** `10G`, `512M`, `1T`, `1073741824` → bytes (binary units; a trailing `i`/`B` is allowed). */
export function parseSize(v: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?$/i.exec(v.trim());
  if (!m) throw new Error(`--size must be like 10G, 512M or a number of bytes (got ${JSON.stringify(v)})`);
  return Math.round(Number(m[1]) * (UNITS[(m[2] ?? '').toUpperCase()] ?? 1));
}

const human = (n: number): string => {
  for (const u of ['T', 'G', 'M', 'K'] as const) if (n >= (UNITS[u] ?? 1) && n % (UNITS[u] ?? 1) === 0) return `${n / (UNITS[u] ?? 1)}${u}`;
  return `${n}`;
};

async function sdk(cmd: Command) {
  const { Kiln } = await import('@kiln/sdk');
  const t = targetFrom(cmd);
  return Kiln.connect({ ...('url' in t && t.url ? { url: t.url } : {}), ...('socket' in t && t.socket ? { socket: t.socket } : {}), ...(t.apiKey ? { apiKey: t.apiKey } : {}) });
}

const REMOTE = /^([a-z0-9][a-z0-9._-]{0,62}):(\/.*)?$/;

function run(file: string, args: string[], io: { stdin?: Readable }): { done: Promise<void> } {
  const p = spawn(file, args, { stdio: [io.stdin ? 'pipe' : 'ignore', 'ignore', 'inherit'] });
  if (io.stdin && p.stdin) void pipeline(io.stdin, p.stdin).catch(() => undefined);
  const done = new Promise<void>((resolve, reject) => {
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${file} exited with ${code}`))));
  });
  return { done };
}

export function registerVolumeCommands(program: Command): void {
  const vol = program.command('volume').description('persistent volumes: ext4 disks that outlive sandboxes (kiln create --volume NAME:/path[:ro])');
  vol
    .command('create <name>')
    .description('create an empty volume (a sparse file: only what is written takes space)')
    .requiredOption('--size <SIZE>', 'filesystem size, e.g. 10G', parseSize)
    .option('--json', 'print JSON')
    .action(async (name: string, o: { size: number; json?: boolean }, cmd: Command) => {
      try {
        const v = (await (await sdk(cmd)).volumes.create(name, { sizeBytes: o.size })) as VolumeView;
        if (o.json) return printJson(v);
        process.stdout.write(`${v.name} (${human(v.sizeBytes)})\n`);
      } catch (err) {
        fail(err);
      }
    });
  vol
    .command('ls')
    .description('list volumes')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      try {
        const kiln = await sdk(cmd);
        const vols = (await kiln.volumes.list()) as VolumeView[];
        if (o.json) return printJson(vols);
        const rows = [['NAME', 'SIZE', 'ATTACHED', 'CREATED']];
        for (const v of vols) rows.push([v.name, human(v.sizeBytes), v.attachedTo.map((a) => `${a.sandboxId}${a.readOnly ? ' (ro)' : ''}`).join(', ') || '-', ago(v.createdAt)]);
        process.stdout.write(table(rows));
        const q = await kiln.volumes.usage();
        process.stderr.write(`${human(q.usedBytes)} of ${human(q.quotaBytes)} quota in use\n`);
      } catch (err) {
        fail(err);
      }
    });
  vol
    .command('inspect <name>')
    .description('show a volume as JSON')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      try {
        printJson(await (await sdk(cmd)).volumes.get(name));
      } catch (err) {
        fail(err);
      }
    });
  vol
    .command('rm <name...>')
    .description('remove volumes (refused while attached to a sandbox)')
    .action(async (names: string[], _o: unknown, cmd: Command) => {
      try {
        const k = await sdk(cmd);
        for (const n of names) {
          await k.volumes.remove(n);
          process.stdout.write(`${n}\n`);
        }
      } catch (err) {
        fail(err);
      }
    });
  vol
    .command('cp <src> <dst>')
    .description('copy a directory tree into or out of a volume: `kiln volume cp ./dir NAME:/path` or `kiln volume cp NAME:/path ./dir` (through a short-lived helper sandbox)')
    .action(async (src: string, dst: string, _o: unknown, cmd: Command) => {
      try {
        const rs = REMOTE.exec(src);
        const rd = REMOTE.exec(dst);
        if (rs && rd) throw new Error('copy between two volumes is not supported: copy through the host');
        if (!rs && !rd) throw new Error('one side of kiln volume cp must be NAME:/path');
        const k = await sdk(cmd);
        if (rd) {
          if (!statSync(src).isDirectory()) throw new Error(`${src} is not a directory`);
          // Through a file: the helper sandbox's create takes a while, and the tar must wait for it.
          const tmp = mkdtempSync(join(tmpdir(), 'kiln-volume-cp-'));
          try {
            await run('tar', ['-c', '-f', join(tmp, 'in.tar'), '-C', src, '.'], {}).done;
            await k.volumes.uploadDir(rd[1] ?? '', rd[2] ?? '/', createReadStream(join(tmp, 'in.tar')));
          } finally {
            rmSync(tmp, { recursive: true, force: true });
          }
          process.stderr.write(`${src} → ${dst}\n`);
        } else if (rs) {
          mkdirSync(dst, { recursive: true });
          const body = await k.volumes.downloadDir(rs[1] ?? '', rs[2] ?? '/');
          const tar = run('tar', ['-x', '-f', '-', '--no-same-owner', '--no-same-permissions', '-C', dst], { stdin: Readable.from(body) });
          await tar.done;
          process.stderr.write(`${src} → ${dst}\n`);
        }
      } catch (err) {
        fail(err);
      }
    });
}
