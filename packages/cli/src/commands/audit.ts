/**
 * kiln audit [--sandbox ID] [--since T] [--follow] [--json]   the audit log, oldest first
 * kiln audit verify [--dir PATH] [--json]                      walk the hash chain
 */
import type { Command } from 'commander';
import { parseDuration } from '../duration.js';
import { fail, printJson } from '../output.js';
import { lines } from '../client.js';
import { clientFrom } from './sandbox.js';

interface AuditRecord {
  seq: number;
  time: string;
  type: string;
  sandboxId?: string;
  requestId?: string;
  actor: { kind: string; uid?: number | null; pid?: number | null; keyId?: string | null; tenant?: string | null; address?: string | null };
  data: Record<string, unknown>;
}

interface VerifyResult {
  ok: boolean;
  files: number;
  records: number;
  firstSeq: number | null;
  head: { seq: number; hash: string } | null;
  broken: { seq: number; file: string; line: number; reason: string; message: string } | null;
}

/** --since: an ISO time, or a duration back from now (10m, 2h, 7d). */
export function sinceParam(s: string): string {
  if (/^\d+(\.\d+)?(ms|s|m|h|d)$/.test(s)) return new Date(Date.now() - parseDuration(s)).toISOString();
  if (Number.isNaN(Date.parse(s))) throw new Error(`--since must be an ISO time or a duration like 10m, 2h (got ${s})`);
  return new Date(Date.parse(s)).toISOString();
}

const who = (a: AuditRecord['actor']): string =>
  a.kind === 'kilnd' ? 'kilnd' : a.kind === 'key' ? `key=${a.keyId ?? '?'} tenant=${a.tenant ?? '?'} from=${a.address ?? '?'}` : `uid=${a.uid ?? '?'} pid=${a.pid ?? '?'}`;

export function describeRecord(r: AuditRecord): string {
  const d = r.data;
  let what: string;
  switch (r.type) {
    case 'api':
      what = `${String(d.method)} ${String(d.path)} → ${String(d.status)}${d.errorCode ? ` ${String(d.errorCode)}` : ''} (${String(d.durationMs)} ms)`;
      break;
    case 'exec':
      what = `${d.argv ? JSON.stringify(d.argv) : `sh -c ${JSON.stringify(d.shell)}`}${d.cwd ? ` in ${String(d.cwd)}` : ''} → ${d.errorCode ? String(d.errorCode) : d.signal ? String(d.signal) : `exit ${String(d.exitCode)}`} (${String(d.durationMs)} ms, out ${String(d.stdoutBytes)} B, err ${String(d.stderrBytes)} B)`;
      break;
    case 'file':
      what = `${String(d.op)} ${String(d.path)}${d.bytes !== undefined ? ` ${String(d.bytes)} B sha256:${String(d.sha256).slice(0, 16)}…` : ''}${d.errorCode ? ` → ${String(d.errorCode)}` : ''}`;
      break;
    case 'lifecycle':
      what = `${String(d.from ?? '∅')} → ${String(d.to)}`;
      break;
    default:
      what = JSON.stringify(d);
  }
  return `${String(r.seq).padStart(6)}  ${r.time}  ${r.type.padEnd(9)} ${(r.sandboxId ?? '-').padEnd(15)} ${who(r.actor).padEnd(18)} ${what}`;
}

export function registerAuditCommands(program: Command): void {
  const audit = program
    .command('audit')
    .description('the audit log (hash-chained): every API call, command, file transfer and state change')
    .option('--sandbox <ID>', 'only records of this sandbox')
    .option('--since <TIME>', 'only records since an ISO time or a duration ago (10m, 2h, 7d)')
    .option('-f, --follow', 'keep printing records as they are written')
    .option('--json', 'one JSON record per line, exactly as stored')
    .action(async (o: { sandbox?: string; since?: string; follow?: boolean; json?: boolean }, cmd: Command) => {
      try {
        const client = clientFrom(cmd);
        const q = new URLSearchParams();
        if (o.sandbox) q.set('sandbox', o.sandbox);
        if (o.since) q.set('since', sinceParam(o.since));
        const print = (r: AuditRecord) => process.stdout.write((o.json ? JSON.stringify(r) : describeRecord(r)) + '\n');
        process.stdout.on('error', () => process.exit(0));
        if (o.follow) {
          q.set('follow', 'true');
          const res = await client.check(await client.raw({ method: 'GET', path: `/v1/audit?${q}` }));
          for await (const line of lines(res)) if (line.trim()) print(JSON.parse(line) as AuditRecord);
          return;
        }
        let after = 0;
        for (;;) {
          q.set('after', String(after));
          const page = await client.call<{ records: AuditRecord[]; nextAfter: number | null }>('GET', `/v1/audit?${q}`);
          for (const r of page.records) print(r);
          if (page.nextAfter === null) break;
          after = page.nextAfter;
        }
      } catch (err) {
        fail(err);
      }
    });

  audit
    .command('verify')
    .description('walk the hash chain; exits 1 and names the first broken record if any was edited, removed or reordered')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nTo check the files on disk without kilnd: kilnd audit verify --dir /var/lib/kiln/audit')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      try {
        const r = await clientFrom(cmd).call<VerifyResult>('GET', '/v1/audit/verify');
        // `audit` has a --json of its own, which commander may hand to it instead
        const json = o.json ?? (cmd.parent?.opts<{ json?: boolean }>().json ?? false);
        if (json) printJson(r);
        else if (r.ok) {
          process.stdout.write(`ok: ${r.records} records in ${r.files} file(s), seq ${r.firstSeq ?? '-'}..${r.head?.seq ?? '-'}, head ${r.head?.hash ?? '-'}\n`);
        } else if (r.broken) {
          process.stdout.write(`BROKEN at seq ${r.broken.seq} (${r.broken.reason}, ${r.broken.file}${r.broken.line ? ` line ${r.broken.line}` : ''}): ${r.broken.message}\n`);
        }
        if (!r.ok) process.exit(1);
      } catch (err) {
        fail(err);
      }
    });
}
