/**
 * The API client of the page: every call carries the API key as a Bearer header (the key
 * lives in sessionStorage: gone when the tab closes). Errors become ApiError with the code
 * and message of kilnd's {error:{code,message}} body, shown to the operator as they are.
 */
const KEY = 'kiln.apiKey';

export const getKey = (): string | null => sessionStorage.getItem(KEY);
export const setKey = (k: string | null): void => (k ? sessionStorage.setItem(KEY, k) : sessionStorage.removeItem(KEY));

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function errorOf(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  try {
    const e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
    if (e?.code) return new ApiError(e.code, e.message ?? e.code, res.status);
  } catch {
    // not JSON: fall through
  }
  return new ApiError(`HTTP_${res.status}`, text || res.statusText || `HTTP ${res.status}`, res.status);
}

function headers(body: unknown): HeadersInit {
  return { authorization: `Bearer ${getKey() ?? ''}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
}

export async function api<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, { method, headers: headers(body), ...(body === undefined ? {} : { body: JSON.stringify(body) }), ...(signal ? { signal } : {}) });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new ApiError('NETWORK', `kilnd did not answer (${(err as Error).message})`, 0);
  }
  if (!res.ok) throw await errorOf(res);
  if (res.status === 204) return undefined as T;
  const type = res.headers.get('content-type') ?? '';
  return (type.includes('json') ? await res.json() : await res.text()) as T;
}

/** Reads a streaming text response line by line (NDJSON events, log tails) until aborted. */
export async function follow(path: string, onLine: (line: string) => void, signal: AbortSignal): Promise<void> {
  const res = await fetch(path, { headers: headers(undefined), signal });
  if (!res.ok || !res.body) throw await errorOf(res);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  }
}

/** The message to show for anything thrown. */
export const describe = (err: unknown): string => (err instanceof ApiError ? `${err.message} (${err.code})` : err instanceof Error ? err.message : String(err));

export interface Sandbox {
  id: string;
  state: string;
  spec: { memoryMiB: number; vcpus: number; diskGiB: number; timeoutMs: number; labels: Record<string, string>; template: string | null; network?: unknown };
  step: string | null;
  error: { code: string; message: string } | null;
  createdAt: string;
  readyAt: string | null;
  expiresAt: string | null;
  tenant?: string | null;
}

export interface Sample {
  id: string;
  at: number;
  vmm: { cpuPercent: number | null; rssBytes: number } | null;
  guest: { memUsedBytes: number; memTotalBytes: number } | null;
  net: { rxBytes: number; txBytes: number } | null;
}

export interface HistoryPoint {
  at: number;
  cpuPercent: number | null;
  rssBytes: number | null;
  memUsedBytes: number | null;
  memTotalBytes: number | null;
  rxBytes: number | null;
  txBytes: number | null;
}

export interface KilnEvent {
  seq: number;
  sandboxId: string;
  at: number;
  type: string;
  data: Record<string, unknown>;
}
