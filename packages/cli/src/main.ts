#!/usr/bin/env node
/**
 * kiln — the command-line client of kilnd, built on @kiln/sdk. Only the module of the command
 * being run is loaded (kiln --version loads commander alone); the daemon's own commands (run,
 * image build, doctor) are kilnd's.
 */
import { enableCompileCache } from 'node:module';
import { exitQuietlyOnClosedPipe } from './closed-pipe.js';

const VERSION = '0.1.0';
// `kiln --version` answers before anything else is loaded.
if (process.argv.length === 3 && (process.argv[2] === '--version' || process.argv[2] === '-V')) {
  process.stdout.write(`${VERSION}\n`);
  process.exit(0);
}
// V8's code cache on disk (Node ≥ 22.1): the modules below compile once, not on every run.
enableCompileCache?.();
exitQuietlyOnClosedPipe();
const { Command } = await import('commander');

type Register = (program: InstanceType<typeof Command>) => void;
/** Command name → the module that registers it (loaded on demand). */
const MODULES: Record<string, () => Promise<Register[]>> = {
  sandbox: async () => [(await import('./commands/sandbox.js')).registerSandboxCommands],
  exec: async () => [(await import('./commands/exec.js')).registerExecCommand],
  logs: async () => [(await import('./commands/logs.js')).registerLogsCommand],
  stats: async () => [(await import('./commands/stats.js')).registerStatsCommand],
  audit: async () => [(await import('./commands/audit.js')).registerAuditCommands],
  cp: async () => [(await import('./commands/cp.js')).registerCpCommand],
  net: async () => [(await import('./commands/net.js')).registerNetCommands],
  template: async () => [(await import('./commands/template.js')).registerTemplateCommands],
  lifecycle: async () => [(await import('./commands/lifecycle.js')).registerLifecycleCommands],
  key: async () => [(await import('./commands/key.js')).registerKeyCommands],
  process: async () => [(await import('./commands/process.js')).registerProcessCommands],
  port: async () => [(await import('./commands/port.js')).registerPortCommands],
  volume: async () => [(await import('./commands/volume.js')).registerVolumeCommands],
  image: async () => [(await import('./commands/image.js')).registerImageCommands],
  daemonMoved: async () => [(await import('./commands/moved.js')).registerMovedCommands],
  mcp: async () => [(await import('./commands/mcp.js')).registerMcpCommand],
};
const COMMANDS: Record<string, keyof typeof MODULES> = {
  create: 'sandbox', ls: 'sandbox', inspect: 'sandbox', rm: 'sandbox',
  exec: 'exec', logs: 'logs', stats: 'stats', audit: 'audit', cp: 'cp', net: 'net',
  template: 'template', pause: 'template', resume: 'template', snapshot: 'template',
  events: 'lifecycle', timeout: 'lifecycle', gc: 'lifecycle', key: 'key', tenant: 'key',
  port: 'port', url: 'port', volume: 'volume',
  ps: 'process', attach: 'process', kill: 'process', shell: 'process',
  daemon: 'daemonMoved', image: 'image', doctor: 'daemonMoved', mcp: 'mcp',
};

exitQuietlyOnClosedPipe();

const program = new Command();
program
  .name('kiln')
  .description('microVM sandboxes with a private Docker daemon, for AI coding agents')
  .version(VERSION)
  .option('--socket <PATH>', 'kilnd API socket (default $KILN_SOCKET or /run/kiln/kiln.sock)')
  .option('--host <URL>', 'a remote kilnd, e.g. https://kiln.example:7443 (default $KILN_HOST; the API key comes from $KILN_API_KEY)')
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) });

/** The first word that is not an option (or an option's value): the command being run. */
function commandWord(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--socket' || a === '--host') i++;
    else if (!a.startsWith('-')) return a;
  }
  return undefined;
}

const word = commandWord(process.argv.slice(2));
const mod = word ? COMMANDS[word] : undefined;
const wanted = mod ? [MODULES[mod]!] : word === undefined && process.argv.slice(2).some((a) => a === '-V' || a === '--version') ? [] : Object.values(MODULES);
for (const load of wanted) for (const register of await load()) register(program);
await program.parseAsync(process.argv).catch(async (err: unknown) => (await import('./output.js')).fail(err));
