/** kilnd audit verify --dir PATH — walks the audit hash chain on disk, without a running kilnd. */
import type { Command } from 'commander';
import { fail, printJson } from './output.js';

export function registerAuditCommand(program: Command): void {
  program
    .command('audit')
    .description('the audit log on disk')
    .command('verify')
    .description('walk the hash chain of the audit files; exits 1 and names the first broken record')
    .option('--dir <PATH>', 'audit directory (default $KILN_STATE_DIR/audit or /var/lib/kiln/audit)')
    .option('--json', 'print the result as JSON')
    .action(async (o: { dir?: string; json?: boolean }) => {
      try {
        const { verifyChain } = await import('../audit/verify.js');
        const dir = o.dir ?? `${process.env.KILN_STATE_DIR ?? '/var/lib/kiln'}/audit`;
        const r = verifyChain(dir, { allowTornTail: true });
        if (r.files === 0) throw new Error(`no audit files (audit-*.jsonl) in ${dir}`);
        if (o.json) printJson(r);
        else if (r.ok) process.stdout.write(`ok: ${r.records} records in ${r.files} file(s), seq ${r.firstSeq ?? '-'}..${r.head?.seq ?? '-'}, head ${r.head?.hash ?? '-'}\n`);
        else if (r.broken) process.stdout.write(`BROKEN at seq ${r.broken.seq} (${r.broken.reason}, ${r.broken.file}${r.broken.line ? ` line ${r.broken.line}` : ''}): ${r.broken.message}\n`);
        if (!r.ok) process.exit(1);
      } catch (err) {
        fail(err);
      }
    });
}
