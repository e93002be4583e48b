/**
 * kiln exec ID [--env] [--cwd] [--user] [-i] [-t] [-d] -- CMD… : streams output, exits with the
 * command's code; -it runs it on a PTY as an interactive terminal; -d starts it in the background
 * and prints its pid (kiln attach / ps / kill).
 */
import type { Command } from 'commander';
import { once } from 'node:events';
import { constants } from 'node:os';
import { parseDuration, parseKeyValues } from '../duration.js';
import { fail } from '../output.js';
import { clientFrom } from './sandbox.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export function registerExecCommand(program: Command): void {
  program
    .command('exec <id> <cmd...>')
    .description('run a command in a sandbox (use -- before the command); exits with its exit code')
    .option('-e, --env <K=V>', 'environment variable (repeatable)', collect)
    .option('-w, --cwd <DIR>', 'working directory in the guest')
    .option('-i, --interactive', 'forward stdin to the command')
    .option('--timeout <DURATION>', 'kill the command after this long')
    .option('-t, --tty', 'run it on a pseudo-terminal (with -i: an interactive terminal in raw mode)')
    .option('-d, --detach', 'start it in the background and print its pid')
    .option('-u, --user <USER>', 'guest user (root, the default, or user)')
    .option('--tag <TAG>', 'with -d: a tag shown by kiln ps')
    .option('--shell', 'run the words as one /bin/sh -c command line')
    .action(async (id: string, words: string[], o: { env?: string[]; cwd?: string; interactive?: boolean; tty?: boolean; detach?: boolean; user?: string; tag?: string; timeout?: string; shell?: boolean }, cmd: Command) => {
      try {
        const client = clientFrom(cmd);
        const line = o.shell ? words.join(' ') : words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
        if (o.tty && !o.detach) {
          const env = o.env ? parseKeyValues(o.env, '--env') : undefined;
          const { runTerminal } = await import('../terminal.js');
          process.exit(await runTerminal(client.transport, id, { cmd: line, ...(o.user ? { user: o.user } : {}), ...(o.cwd ? { cwd: o.cwd } : {}), ...(env ? { env } : {}) }));
        }
        if (o.detach) {
          const { Processes } = await import('@kiln/sdk');
          const p = await new Processes(client.transport, id).start({
            ...(o.shell ? { cmd: line } : { argv: words }),
            ...(o.env ? { env: parseKeyValues(o.env, '--env') } : {}),
            ...(o.cwd ? { cwd: o.cwd } : {}),
            ...(o.user ? { user: o.user } : {}),
            ...(o.tag ? { tag: o.tag } : {}),
            ...(o.timeout ? { timeoutMs: parseDuration(o.timeout) } : {}),
            ...(o.interactive ? { stdin: true } : {}),
          });
          process.stdout.write(`${p.pid}\n`);
          return;
        }
        const body: Record<string, unknown> = o.shell ? { shell: words.join(' ') } : { argv: words };
        if (o.env) body.env = parseKeyValues(o.env, '--env');
        if (o.cwd) body.cwd = o.cwd;
        if (o.user) body.user = o.user;
        if (o.interactive) body.stdin = true;
        if (o.timeout) body.timeoutMs = parseDuration(o.timeout);
        let execId: string | null = null;
        const forward = (sig: NodeJS.Signals) => {
          if (execId) void client.signal(id, execId, sig).catch(() => undefined);
        };
        process.on('SIGINT', () => forward('SIGINT'));
        process.on('SIGTERM', () => forward('SIGTERM'));
        let stdinDone: Promise<void> | null = null;
        for await (const ev of client.exec(id, body)) {
          switch (ev.type) {
            case 'started':
              execId = ev.execId;
              if (o.interactive) stdinDone = client.sendStdin(id, ev.execId, process.stdin);
              break;
            // Waiting for our own reader keeps flow control end to end: the next event is read
            // from kilnd (and the guest's command allowed to write more) only after this one left.
            case 'stdout':
              if (!process.stdout.write(Buffer.from(ev.data, 'base64'))) await once(process.stdout, 'drain');
              break;
            case 'stderr':
              if (!process.stderr.write(Buffer.from(ev.data, 'base64'))) await once(process.stderr, 'drain');
              break;
            case 'exit': {
              if (stdinDone) process.stdin.destroy();
              const code = ev.exitCode ?? (ev.signal ? 128 + ((constants.signals as Record<string, number>)[ev.signal] ?? 1) : 1);
              if (ev.timedOut) process.stderr.write(`kiln: command timed out after ${ev.durationMs} ms\n`);
              await new Promise<void>((r) => process.stdout.write('', () => r()));
              process.exit(code);
              break;
            }
            case 'error':
              throw Object.assign(new Error(ev.error.message), { code: ev.error.code });
          }
        }
        throw new Error('the exec stream ended without an exit status');
      } catch (err) {
        fail(err);
      }
    });
}
