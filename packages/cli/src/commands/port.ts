/**
 * kiln port / kiln url — a sandbox's ports on kilnd's sandbox proxy (docs/ports.md): expose
 * (private unless --public), list, remove, and print the URL to open (signed for a private
 * port, plain for a public one).
 */
import type { Command } from 'commander';
import type { PortUrl, PortView } from '@kiln/sdk';
import { clientFrom } from '../connect.js';
import { fail, printJson, table } from '../output.js';

const enc = encodeURIComponent;

function portArg(s: string): number {
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < 1 || n > 65535) throw new Error(`PORT must be 1-65535 (got ${s})`);
  return n;
}

export function registerPortCommands(program: Command): void {
  const port = program.command('port').description("a sandbox's ports on the sandbox proxy");

  port
    .command('expose <id> <port>')
    .description('serve PORT of the sandbox on the proxy (private: a token, signed URL or API key is needed)')
    .option('--public', 'anyone may open it, no token needed')
    .option('--json', 'print as JSON')
    .action(async (id: string, p: string, o: { public?: boolean; json?: boolean }, cmd: Command) => {
      try {
        const v = await clientFrom(cmd).call<PortView>('POST', `/v1/sandboxes/${enc(id)}/ports`, { port: portArg(p), public: o.public === true });
        if (o.json) return printJson(v);
        process.stdout.write(`${v.port} ${v.public ? 'public' : 'private'} ${v.url ?? '(kilnd runs no proxy: --proxy-listen)'}\n`);
      } catch (err) {
        fail(err);
      }
    });

  port
    .command('ls <id>')
    .description('the exposed ports and their URLs')
    .option('--json', 'print as JSON')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      try {
        const { ports } = await clientFrom(cmd).call<{ ports: PortView[] }>('GET', `/v1/sandboxes/${enc(id)}/ports`);
        if (o.json) return printJson({ ports });
        process.stdout.write(table([['PORT', 'ACCESS', 'URL'], ...ports.map((x) => [String(x.port), x.public ? 'public' : 'private', x.url ?? '-'])]));
      } catch (err) {
        fail(err);
      }
    });

  port
    .command('rm <id> <port>')
    .description('stop exposing PORT (open connections stay until they close)')
    .action(async (id: string, p: string, _o: unknown, cmd: Command) => {
      try {
        await clientFrom(cmd).call('DELETE', `/v1/sandboxes/${enc(id)}/ports/${portArg(p)}`);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('url <id> <port>')
    .description('the URL to open PORT: plain when public, else signed with an expiry (the port is exposed first if it is not)')
    .option('--ttl <SECONDS>', 'how long a signed URL is valid (default 86400)')
    .option('--json', 'print as JSON')
    .action(async (id: string, p: string, o: { ttl?: string; json?: boolean }, cmd: Command) => {
      try {
        const c = clientFrom(cmd);
        const n = portArg(p);
        const { ports } = await c.call<{ ports: PortView[] }>('GET', `/v1/sandboxes/${enc(id)}/ports`);
        if (!ports.some((x) => x.port === n)) await c.call('POST', `/v1/sandboxes/${enc(id)}/ports`, { port: n });
        const u = await c.call<PortUrl>('GET', `/v1/sandboxes/${enc(id)}/ports/${n}/url${o.ttl ? `?ttl=${enc(o.ttl)}` : ''}`);
        if (o.json) return printJson(u);
        if (u.url === null) throw new Error('kilnd runs no sandbox proxy (start it with --proxy-listen)');
        process.stdout.write(`${u.url}\n`);
      } catch (err) {
        fail(err);
      }
    });
}
