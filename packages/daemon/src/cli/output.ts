/** kilnd's command-line output: errors are one clear line on stderr and a non-zero exit. */
export function fail(err: unknown): never {
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e?.code === 'string' ? ` (${e.code})` : '';
  process.stderr.write(`kilnd: ${typeof e?.message === 'string' ? e.message : String(err)}${code}\n`);
  process.exit(1);
}

export function printJson(v: unknown): void {
  process.stdout.write(JSON.stringify(v, null, 2) + '\n');
}
