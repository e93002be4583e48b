/** Errors are one clear line on stderr and a non-zero exit. */
import { KilnError as KilnApiError } from '@kiln/sdk/errors';

export { exitQuietlyOnClosedPipe } from './closed-pipe.js';

export function fail(err: unknown): never {
  if (err instanceof KilnApiError) {
    process.stderr.write(`kiln: ${err.message} (${err.code})\n`);
    process.exit(err.code === 'DAEMON_UNREACHABLE' ? 3 : 1);
  }
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? ` (${e.code})` : '';
  process.stderr.write(`kiln: ${typeof e?.message === 'string' ? e.message : String(err)}${code}\n`);
  process.exit(1);
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}

export function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')).join('\n') + '\n';
}

export function ago(iso: string | null): string {
  if (!iso) return '-';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}
