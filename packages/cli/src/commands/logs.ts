/** kiln logs ID [--follow] [--service console|dockerd|agent] [--tail N] [--timestamps] */
import type { Command } from 'commander';
import { fail } from '../output.js';
import { lines } from '../client.js';
import { clientFrom } from './sandbox.js';

const SERVICES = ['console', 'dockerd', 'agent'];

/** Stored line → what is printed: `<service> <text>` (or `<text>` with --service), time first with --timestamps. */
export function formatLogLine(line: string, o: { service?: string; timestamps?: boolean }): string {
  const a = line.indexOf(' ');
  const b = a < 0 ? -1 : line.indexOf(' ', a + 1);
  if (b < 0) return line;
  const [time, service, text] = [line.slice(0, a), line.slice(a + 1, b), line.slice(b + 1)];
  const body = o.service ? text : `${service.padEnd(7)} ${text}`;
  return o.timestamps ? `${time} ${body}` : body;
}

export function registerLogsCommand(program: Command): void {
  program
    .command('logs <id>')
    .description('guest logs (serial console, dockerd, agent), also after the sandbox is destroyed')
    .option('-f, --follow', 'keep printing new lines until the sandbox is destroyed')
    .option('--service <NAME>', 'only console, dockerd or agent (default all)')
    .option('--tail <N>', 'only the last N lines (default all)')
    .option('-t, --timestamps', 'show the host time each line arrived')
    .action(async (id: string, o: { follow?: boolean; service?: string; tail?: string; timestamps?: boolean }, cmd: Command) => {
      try {
        if (o.service !== undefined && !SERVICES.includes(o.service)) throw new Error(`--service must be one of ${SERVICES.join(', ')} (got ${o.service})`);
        if (o.tail !== undefined && !/^\d+$/.test(o.tail)) throw new Error(`--tail must be a number of lines (got ${o.tail})`);
        const q = new URLSearchParams();
        if (o.service) q.set('service', o.service);
        if (o.tail) q.set('tail', o.tail);
        if (o.follow) q.set('follow', 'true');
        const client = clientFrom(cmd);
        const res = await client.check(await client.raw({ method: 'GET', path: `/v1/sandboxes/${encodeURIComponent(id)}/logs?${q}` }));
        process.stdout.on('error', () => process.exit(0)); // reader went away (| head)
        for await (const text of lines(res, { partialTail: true })) process.stdout.write(formatLogLine(text, o) + '\n');
      } catch (err) {
        fail(err);
      }
    });
}
