#!/usr/bin/env node
/** kiln — the command-line client of kilnd. */
import { Command } from 'commander';
import { registerCpCommand } from './commands/cp.js';
import { registerDaemonCommands } from './commands/daemon.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerExecCommand } from './commands/exec.js';
import { registerAuditCommands } from './commands/audit.js';
import { registerLogsCommand } from './commands/logs.js';
import { registerStatsCommand } from './commands/stats.js';
import { registerNetCommands } from './commands/net.js';
import { registerSandboxCommands } from './commands/sandbox.js';
import { exitQuietlyOnClosedPipe, fail } from './output.js';
import { registerTemplateCommands } from './commands/template.js';
import { registerLifecycleCommands } from './commands/lifecycle.js';
import { registerKeyCommands } from './commands/key.js';

exitQuietlyOnClosedPipe();

const program = new Command();
program
  .name('kiln')
  .description('microVM sandboxes with a private Docker daemon, for AI coding agents')
  .version('0.1.0')
  .option('--socket <PATH>', 'kilnd API socket (default $KILN_SOCKET or /run/kiln/kiln.sock)')
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) });

registerDaemonCommands(program);
registerDoctorCommand(program);
registerSandboxCommands(program);
registerExecCommand(program);
registerLogsCommand(program);
registerStatsCommand(program);
registerAuditCommands(program);
registerCpCommand(program);
registerNetCommands(program);
registerTemplateCommands(program);
registerLifecycleCommands(program);
registerKeyCommands(program);

program.parseAsync(process.argv).catch(fail);
