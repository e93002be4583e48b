#!/usr/bin/env node
/**
 * kilnd — the kiln daemon's own binary: `kilnd` or `kilnd run` serves the API; `kilnd image
 * build`, `kilnd doctor` and `kilnd audit verify --dir` work on this host without a running
 * daemon. The client (`kiln`) never loads any of this.
 */
import { Command } from 'commander';
import { registerAuditCommand } from './cli/audit.js';
import { registerDoctorCommand } from './cli/doctor.js';
import { registerImageCommands, registerRunCommand } from './cli/run.js';
import { KILN_VERSION } from './version.js';

const program = new Command();
program
  .name('kilnd')
  .description('the kiln daemon: microVM sandboxes with a private Docker daemon')
  .version(KILN_VERSION)
  .option('--socket <PATH>', 'API socket (default $KILN_SOCKET or /run/kiln/kiln.sock)')
  .showHelpAfterError()
  .configureOutput({ outputError: (str, write) => write(str) });

registerRunCommand(program);
registerImageCommands(program);
registerDoctorCommand(program);
registerAuditCommand(program);

void program.parseAsync(process.argv);
