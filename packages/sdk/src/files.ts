/** sandbox.files: files and directories in the guest; directories move as tar streams. */
import { KilnError } from './errors.js';
import type { Transport } from './transport.js';
import { asBody, call, enc, fromBase64, ndjson, query, readBytes, readText, send, type Data } from './wire.js';

export type FileType = 'file' | 'dir' | 'symlink' | 'other';
export interface FileInfo {
  path: string;
  type: FileType;
  size: number;
  mode: number;
  mtimeMs: number;
}
export interface DirEntry {
  name: string;
  type: FileType;
  size: number;
  mode: number;
  mtimeMs: number;
}
export interface WriteResult {
  bytes: number;
  sha256: string;
}

export class Files {
  constructor(
    private readonly t: Transport,
    private readonly id: string,
  ) {}

  private path(sub: string, q: Record<string, string | number | boolean | undefined>): string {
    return `/v1/sandboxes/${enc(this.id)}/files${sub}${query(q)}`;
  }

  /** Reads a file: as text (default), bytes, or a stream of chunks. */
  read(path: string, opts?: { format?: 'text'; signal?: AbortSignal }): Promise<string>;
  read(path: string, opts: { format: 'bytes'; signal?: AbortSignal }): Promise<Uint8Array>;
  read(path: string, opts: { format: 'stream'; signal?: AbortSignal }): Promise<AsyncIterable<Uint8Array>>;
  async read(path: string, opts: { format?: 'text' | 'bytes' | 'stream'; signal?: AbortSignal } = {}): Promise<string | Uint8Array | AsyncIterable<Uint8Array>> {
    const res = await send(this.t, { method: 'GET', path: this.path('', { path }), ...(opts.signal ? { signal: opts.signal } : {}) });
    if (opts.format === 'stream') return res.body;
    return opts.format === 'bytes' ? readBytes(res) : readText(res);
  }

  /** Writes a file (missing parent directories are created unless `parents: false`). */
  async write(path: string, data: Data, opts: { mode?: number; parents?: boolean; signal?: AbortSignal } = {}): Promise<WriteResult> {
    const mode = opts.mode === undefined ? undefined : opts.mode.toString(8).padStart(4, '0');
    return JSON.parse(
      await readText(await send(this.t, { method: 'PUT', path: this.path('', { path, mode, parents: opts.parents ?? true }), body: asBody(data), ...(opts.signal ? { signal: opts.signal } : {}) })),
    ) as WriteResult;
  }

  list(path: string): Promise<DirEntry[]> {
    return call(this.t, 'GET', this.path('/list', { path }));
  }

  stat(path: string): Promise<FileInfo> {
    return call(this.t, 'GET', this.path('/stat', { path }));
  }

  /** True when the path exists (a symlink counts, even a dangling one). */
  async exists(path: string): Promise<boolean> {
    try {
      await this.stat(path);
      return true;
    } catch (err) {
      if ((err as KilnError).code === 'GUEST_NOT_FOUND') return false;
      throw err;
    }
  }

  async mkdir(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await call(this.t, 'POST', `/v1/sandboxes/${enc(this.id)}/files/mkdir`, { path, recursive: opts.recursive ?? true });
  }

  async remove(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await call(this.t, 'DELETE', this.path('', { path, recursive: opts.recursive ?? false }));
  }

  async rename(from: string, to: string): Promise<void> {
    try {
      await call(this.t, 'POST', `/v1/sandboxes/${enc(this.id)}/files/rename`, { from, to });
    } catch (err) {
      if ((err as KilnError).code !== 'ROUTE_NOT_FOUND') throw err;
      await this.run(['mv', '-T', '--', from, to]); // a kilnd without the rename route
    }
  }

  /** Extracts a tar stream under `dir` in the guest (created if missing). */
  async uploadDir(dir: string, tar: Data, opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (await this.hasTarRoute()) {
      await readText(await send(this.t, { method: 'PUT', path: this.path('/tar', { path: dir }), body: asBody(tar), contentType: 'application/x-tar', ...(opts.signal ? { signal: opts.signal } : {}) }));
      return;
    }
    // A kilnd without the tar route: tar in the guest, fed through stdin.
    for await (const _ of this.execBytes(['sh', '-c', 'mkdir -p -- "$1" && exec tar -x -C "$1" -f -', 'sh', dir], tar));
  }

  /** A tar stream of `dir` in the guest (entries relative to it). */
  async downloadDir(dir: string, opts: { signal?: AbortSignal } = {}): Promise<AsyncIterable<Uint8Array>> {
    if (await this.hasTarRoute()) return (await send(this.t, { method: 'GET', path: this.path('/tar', { path: dir }), ...(opts.signal ? { signal: opts.signal } : {}) })).body;
    return this.execBytes(['tar', '-c', '-C', dir, '-f', '-', '.']);
  }

  private tarRoute: Promise<boolean> | null = null;
  /** Whether kilnd has the tar routes: asks for a path that cannot exist (ROUTE_NOT_FOUND = no). */
  private hasTarRoute(): Promise<boolean> {
    this.tarRoute ??= this.t.request({ method: 'GET', path: this.path('/tar', { path: '/nonexistent/.kiln-probe' }) }).then(async (res) => {
      const text = await readText(res);
      return !(res.status === 404 && text.includes('ROUTE_NOT_FOUND'));
    });
    return this.tarRoute;
  }

  private async run(argv: string[]): Promise<void> {
    for await (const _ of this.execBytes(argv));
  }

  /** Runs argv, yields its stdout bytes; a non-zero exit throws with its stderr. */
  private async *execBytes(argv: string[], stdin?: Data): AsyncGenerator<Uint8Array> {
    const res = await send(this.t, { method: 'POST', path: `/v1/sandboxes/${enc(this.id)}/exec`, json: { argv, ...(stdin === undefined ? {} : { stdin: true }) } });
    let stderr = '';
    let fed: Promise<unknown> | null = null;
    for await (const ev of ndjson<{ type: string; execId?: string; data?: string; exitCode?: number | null; signal?: string | null; error?: { code: string; message: string } }>(res.body)) {
      if (ev.type === 'started' && stdin !== undefined) {
        fed = send(this.t, { method: 'POST', path: `/v1/sandboxes/${enc(this.id)}/execs/${enc(ev.execId ?? '')}/stdin`, body: asBody(stdin) }).then((r) => r.cancel());
      } else if (ev.type === 'stdout') yield fromBase64(ev.data ?? '');
      else if (ev.type === 'stderr') stderr += new TextDecoder().decode(fromBase64(ev.data ?? ''));
      else if (ev.type === 'error') throw new KilnError(ev.error?.code ?? 'INTERNAL', ev.error?.message ?? 'exec failed', { status: 500 });
      else if (ev.type === 'exit') {
        await fed;
        if (ev.exitCode !== 0) throw new KilnError('GUEST_COMMAND_FAILED', `${argv[0]} exited with ${ev.exitCode ?? ev.signal}: ${stderr.trim()}`, { status: 0, details: { exitCode: ev.exitCode, stderr } });
        return;
      }
    }
    throw new KilnError('PROTOCOL_ERROR', 'the exec stream ended without an exit status', { status: 0 });
  }
}
