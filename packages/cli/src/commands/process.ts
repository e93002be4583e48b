/**
 * Background processes: kiln ps ID, kiln attach ID PID [--offset N] [-i], kiln kill ID PID
 * [--signal SIG]. (`kiln exec -d` starts one: commands/exec.ts.)
 */
import type { Command } from 'commander';
import { constants } from 'node:os';
import { Processes } from '@kiln/sdk';
import { clientFrom } from '../connect.js';
import { ago, fail, printJson, table } from '../output.js';
import { runTerminal } from '../terminal.js';

const pidArg = (v: string): number => {
  if (!/^\d+$/.test(v)) throw new Error(`PID must be a whole number (got ${v})`);
  return Number(v);
};

export function registerProcessCommands(program: Command): void {
  program
    .command('ps <id>')
    .description("a sandbox's background processes (running, and exited ones kept for a while)")
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      try {
        const list = await new Processes(clientFrom(cmd).transport, id).list();
        if (o.json) return printJson(list);
        const rows = [['PID', 'STATE', 'EXIT', 'USER', 'TAG', 'STARTED', 'COMMAND']];
        for (const p of list) {
          rows.push([String(p.pid), p.state, p.state === 'exited' ? (p.signal ?? String(p.exitCode)) : '-', p.user, p.tag ?? '-', ago(p.startedAt), `${p.pty ? '[pty] ' : ''}${p.argv.join(' ')}`]);
        }
        process.stdout.write(table(rows));
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('attach <id> <pid>')
    .description("a background process's output from --offset (default 0: all still buffered), until it exits; exits with its code")
    .option('--offset <N>', 'output offset to start from')
    .option('-i, --interactive', 'forward stdin to the process (a PTY process: a terminal in raw mode)')
    .action(async (id: string, pidText: string, o: { offset?: string; interactive?: boolean }, cmd: Command) => {
      try {
        const pid = pidArg(pidText);
        const client = clientFrom(cmd);
        const procs = new Processes(client.transport, id);
        const info = await procs.get(pid);
        if (info.pty && o.interactive) process.exit(await runTerminal(client.transport, id, { pid }));
        const offset = o.offset === undefined ? 0 : pidArg(o.offset);
        const h = procs.connect(pid, {
          offset,
          onStdout: (s) => process.stdout.write(s),
          onStderr: (s) => process.stderr.write(s),
          onPty: (b) => process.stdout.write(b),
          onDropped: (n) => process.stderr.write(`kiln: ${n} bytes of output before offset ${offset} are no longer kept\n`),
        });
        if (o.interactive) {
          void procs.sendStdin(pid, process.stdin).then(() => procs.closeStdin(pid)).catch(() => undefined);
        }
        const st = await h.done;
        const code = !st ? 0 : (st.exitCode ?? (st.signal ? 128 + ((constants.signals as Record<string, number>)[st.signal] ?? 1) : 1));
        await new Promise<void>((r) => process.stdout.write('', () => r()));
        process.exit(code);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('kill <id> <pid>')
    .description('signal a background process (default SIGKILL)')
    .option('-s, --signal <SIG>', 'signal name, e.g. SIGTERM')
    .action(async (id: string, pidText: string, o: { signal?: string }, cmd: Command) => {
      try {
        const sig = o.signal ? (o.signal.startsWith('SIG') ? o.signal : `SIG${o.signal}`).toUpperCase() : 'SIGKILL';
        await new Processes(clientFrom(cmd).transport, id).kill(pidArg(pidText), sig);
      } catch (err) {
        fail(err);
      }
    });

  program
    .command('shell <id>')
    .description("an interactive shell in the sandbox (a PTY: the user's login shell)")
    .option('-u, --user <USER>', 'guest user (root or user)')
    .option('-w, --cwd <DIR>', 'working directory')
    .action(async (id: string, o: { user?: string; cwd?: string }, cmd: Command) => {
      try {
        process.exit(await runTerminal(clientFrom(cmd).transport, id, { ...(o.user ? { user: o.user } : {}), ...(o.cwd ? { cwd: o.cwd } : {}) }));
      } catch (err) {
        fail(err);
      }
    });
}
