// Minimal structured logging to stderr (the guest console, which the host captures).

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

let debugEnabled = process.env.KILN_AGENT_DEBUG === '1';

export function setDebug(on: boolean): void {
  debugEnabled = on;
}

export function log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  if (level === 'debug' && !debugEnabled) return;
  const line = JSON.stringify({ t: new Date().toISOString(), level, msg, ...fields });
  process.stderr.write(`kiln-agent ${line}\n`);
}

export function errorFields(err: unknown): Record<string, unknown> {
  if (err instanceof Error) return { err: err.message, code: (err as { code?: unknown }).code };
  return { err: String(err) };
}
