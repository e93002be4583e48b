/** The audit records of what happens inside a guest: commands run and files moved. */
import type { AuditInput } from './record.js';

/** Where routes send records. The daemon's AuditLog; a no-op in tests that don't audit. */
export interface AuditSink {
  append(input: AuditInput): Promise<unknown>;
}

export const NO_AUDIT: AuditSink = { append: async () => null };

export interface ExecAuditFields {
  sandboxId: string;
  execId: string;
  argv?: string[];
  shell?: string;
  cwd?: string;
  user?: string;
  envKeys: string[];
  stdin: boolean;
  stdoutBytes: number;
  stderrBytes: number;
  result?: { exitCode: number | null; signal: string | null; timedOut: boolean; durationMs: number };
  errorCode?: string;
}

/** An `exec` record: argv (or shell), cwd, exit code/signal, duration, bytes of output. Env values are not recorded (they may hold secrets), only their names. */
export function execRecord(f: ExecAuditFields): AuditInput {
  return {
    type: 'exec',
    sandboxId: f.sandboxId,
    data: {
      execId: f.execId,
      ...(f.argv ? { argv: f.argv } : {}),
      ...(f.shell !== undefined ? { shell: f.shell } : {}),
      cwd: f.cwd ?? null,
      ...(f.user ? { user: f.user } : {}),
      envKeys: f.envKeys,
      stdin: f.stdin,
      exitCode: f.result?.exitCode ?? null,
      signal: f.result?.signal ?? null,
      timedOut: f.result?.timedOut ?? false,
      durationMs: f.result?.durationMs ?? null,
      stdoutBytes: f.stdoutBytes,
      stderrBytes: f.stderrBytes,
      ...(f.errorCode ? { errorCode: f.errorCode } : {}),
    },
  };
}

export type FileOp = 'upload' | 'download' | 'remove' | 'mkdir' | 'rename' | 'tar-upload' | 'tar-download';

/** A `file` record: which path, how many bytes, their SHA-256 (transfers), or the error. */
export function fileRecord(sandboxId: string, op: FileOp, path: string, r: { bytes?: number; sha256?: string; errorCode?: string; recursive?: boolean; mode?: number }): AuditInput {
  return {
    type: 'file',
    sandboxId,
    data: {
      op,
      path,
      ...(r.bytes !== undefined ? { bytes: r.bytes } : {}),
      ...(r.sha256 !== undefined ? { sha256: r.sha256 } : {}),
      ...(r.mode !== undefined ? { mode: r.mode } : {}),
      ...(r.recursive !== undefined ? { recursive: r.recursive } : {}),
      ...(r.errorCode ? { errorCode: r.errorCode } : {}),
    },
  };
}
