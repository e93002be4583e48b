/** kiln events [ID] [--follow] / kiln timeout ID DURATION / kiln gc. */
import type { Command } from 'commander';
import { parseDuration } from '../duration.js';
import { fail, printJson } from '../output.js';
import { lines } from '../client.js';
import { clientFrom } from './sandbox.js';

interface EventView {
  seq: number;
  sandboxId: string;
  at: number;
  type: string;
  data: Record<string, unknown>;
}

interface EventPage {
  events: EventView[];
  nextAfter?: number | null;
}

const line = (e: EventView, host: boolean): string =>
  `${new Date(e.at).toISOString()}  ${host ? `${e.sandboxId}  ` : ''}${e.type.padEnd(16)} ${JSON.stringify(e.data)}\n`;

export function registerLifecycleCommands(program: Command): void {
  program
    .command('events [id]')
    .description('lifecycle events (states with causes, creation steps with durations) of one sandbox, or of the host without ID')
    .option('--follow', 'keep printing new events')
    .option('--json', 'print JSON (with --follow: one object per line)')
    .action(async (id: string | undefined, o: { follow?: boolean; json?: boolean }, cmd: Command) => {
      try {
        const client = clientFrom(cmd);
        const q = new URLSearchParams();
        if (id) q.set('sandbox', id);
        if (id) await client.get(id).catch(async (err: unknown) => {
          // A destroyed sandbox has no row but keeps its events: only refuse ids with none.
          if ((await client.call<{ events: EventView[] }>('GET', `/v1/events?${q.toString()}&limit=1`)).events.length === 0) throw err;
        });
        if (!o.follow) {
          // A page at a time (the API pages by seq cursor); --json prints one array of them all.
          const all: EventView[] = [];
          for (let after: number | null = 0; after !== null; ) {
            q.set('after', String(after));
            const page: EventPage = await client.call<EventPage>('GET', `/v1/events?${q.toString()}`);
            if (o.json) all.push(...page.events);
            else for (const e of page.events) process.stdout.write(line(e, !id));
            after = page.nextAfter ?? null;
          }
          if (o.json) printJson(all);
          return;
        }
        q.set('follow', 'true');
        const res = await client.check(await client.raw({ method: 'GET', path: `/v1/events?${q.toString()}` }));
        for await (const text of lines(res)) {
          if (!text.trim()) continue;
          process.stdout.write(o.json ? `${text}\n` : line(JSON.parse(text) as EventView, !id));
        }
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('timeout <id> <duration>')
    .description('set a sandbox to expire DURATION from now (e.g. 30m, 2h; 0 = never): extends or shortens its timeout')
    .action(async (id: string, duration: string, _o: unknown, cmd: Command) => {
      try {
        const sb = await clientFrom(cmd).call<{ id: string; expiresAt: string | null }>('PUT', `/v1/sandboxes/${encodeURIComponent(id)}/timeout`, { timeoutMs: parseDuration(duration) });
        process.stdout.write(`${sb.id} expires ${sb.expiresAt ?? 'never'}\n`);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('gc')
    .description('collect garbage now: orphaned VMM processes, run dirs (disks, sockets, logs), network namespaces, devices, nft tables and resolvers — also those another kilnd left that no live kilnd owns; prints what was removed')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      try {
        const { removed } = await clientFrom(cmd).call<{ removed: string[] }>('POST', '/v1/gc');
        if (o.json) return printJson(removed);
        for (const r of removed) process.stdout.write(`removed ${r}\n`);
        process.stderr.write(`gc: ${removed.length} removed\n`);
      } catch (err) {
        fail(err);
      }
    });
}
