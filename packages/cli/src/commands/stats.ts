/** kiln stats [ID] [--follow] [--json] — live resource use, like `docker stats`. */
import type { Command } from 'commander';
import { fail, printJson, table } from '../output.js';
import { clientFrom } from './sandbox.js';

export interface SandboxSample {
  id: string;
  state: string;
  at: number;
  vmm: { pid: number; cpuSeconds: number; cpuPercent: number | null; rssBytes: number } | null;
  guest: { memTotalBytes: number; memUsedBytes: number; load1: number } | null;
  disk: { allocatedBytes: number; sizeBytes: number } | null;
  net: { rxBytes: number; txBytes: number } | null;
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 && i > 0 ? v.toFixed(1) : Math.round(v)}${units[i]}`;
}

export function statsTable(samples: SandboxSample[]): string {
  const rows = [['SANDBOX', 'STATE', 'CPU %', 'CPU TIME', 'VMM MEM', 'GUEST MEM / TOTAL', 'LOAD', 'DISK', 'NET RX / TX']];
  for (const s of samples) {
    rows.push([
      s.id,
      s.state,
      s.vmm?.cpuPercent === null || s.vmm?.cpuPercent === undefined ? '-' : `${s.vmm.cpuPercent.toFixed(1)}%`,
      s.vmm ? `${s.vmm.cpuSeconds.toFixed(1)}s` : '-',
      bytes(s.vmm?.rssBytes),
      s.guest ? `${bytes(s.guest.memUsedBytes)} / ${bytes(s.guest.memTotalBytes)}` : '-',
      s.guest ? s.guest.load1.toFixed(2) : '-',
      bytes(s.disk?.allocatedBytes),
      s.net ? `${bytes(s.net.rxBytes)} / ${bytes(s.net.txBytes)}` : '-',
    ]);
  }
  return table(rows);
}

export function registerStatsCommand(program: Command): void {
  program
    .command('stats [id]')
    .description('resource use of sandboxes: VMM CPU and memory, guest memory and load, disk, network')
    .option('-f, --follow', 'refresh until interrupted')
    .option('--json', 'print JSON (with --follow: one line per refresh)')
    .action(async (id: string | undefined, o: { follow?: boolean; json?: boolean }, cmd: Command) => {
      try {
        const client = clientFrom(cmd);
        const tty = process.stdout.isTTY && !o.json;
        process.stdout.on('error', () => process.exit(0));
        for (let first = true; ; first = false) {
          let samples: SandboxSample[];
          let intervalMs = 2000;
          if (id) {
            samples = [await client.call<SandboxSample>('GET', `/v1/sandboxes/${encodeURIComponent(id)}/stats${first ? '?fresh=true' : ''}`)];
          } else {
            const r = await client.call<{ intervalMs: number; sandboxes: SandboxSample[] }>('GET', `/v1/stats${first ? '?fresh=true' : ''}`);
            samples = r.sandboxes;
            intervalMs = r.intervalMs;
          }
          if (o.json) {
            if (o.follow) process.stdout.write(JSON.stringify(id ? samples[0] : samples) + '\n');
            else printJson(id ? samples[0] : samples);
          } else {
            process.stdout.write((tty && o.follow ? '\x1b[H\x1b[2J' : '') + statsTable(samples) + (o.follow && !tty ? '\n' : ''));
          }
          if (!o.follow) return;
          await new Promise((r) => setTimeout(r, intervalMs));
        }
      } catch (err) {
        fail(err);
      }
    });
}
