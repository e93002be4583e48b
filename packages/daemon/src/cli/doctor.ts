/** kilnd doctor — checks this host for what kiln needs and prints the fix for each gap. */
import type { Command } from 'commander';
import { fail, printJson } from './output.js';

const MARK = { ok: '✓', warn: '!', fail: '✗' } as const;

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('check the host: accelerator, QEMU, seccomp, cgroups, namespaces, VMM jail, nftables, disk, image, templates, sandbox proxy')
    .option('--state-dir <DIR>', 'state directory (default $KILN_STATE_DIR or /var/lib/kiln)')
    .option('--json', 'print the checks as JSON')
    .option('--insecure-no-jail', 'check for a kilnd run with --insecure-no-jail (default $KILN_INSECURE_NO_JAIL)')
    .action(async (o: { stateDir?: string; json?: boolean; insecureNoJail?: boolean }) => {
      try {
        const { runDoctor } = await import('../doctor/checks.js');
        const checks = await runDoctor({ stateDir: o.stateDir ?? process.env.KILN_STATE_DIR ?? '/var/lib/kiln', ...(o.insecureNoJail ? { insecureNoJail: true } : {}) });
        const failed = checks.filter((c) => c.status === 'fail').length;
        if (o.json) printJson({ ok: failed === 0, checks });
        else {
          for (const c of checks) {
            process.stdout.write(`${MARK[c.status]} ${c.name.padEnd(11)} ${c.detail}\n`);
            if (c.fix) process.stdout.write(`  ${''.padEnd(11)} fix: ${c.fix}\n`);
          }
          process.stdout.write(failed ? `${failed} check(s) failed\n` : 'kiln can run here\n');
        }
        if (failed) process.exitCode = 1;
      } catch (err) {
        fail(err);
      }
    });
}
