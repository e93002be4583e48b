/** Audit records of background processes and terminal sessions. */
import type { AuditInput } from './record.js';

export interface ProcessStartFields {
  sandboxId: string;
  pid: number | null;
  argv?: string[];
  shell?: string;
  cwd?: string;
  user?: string;
  tag?: string;
  envKeys: string[];
  pty: boolean;
  errorCode?: string;
}

/** A background process was started (or failed to start). Env values are not recorded, only their names. */
export function processStartRecord(f: ProcessStartFields): AuditInput {
  return {
    type: 'process',
    sandboxId: f.sandboxId,
    data: {
      op: 'start',
      pid: f.pid,
      ...(f.argv ? { argv: f.argv } : {}),
      ...(f.shell !== undefined ? { shell: f.shell } : {}),
      cwd: f.cwd ?? null,
      user: f.user ?? null,
      tag: f.tag ?? null,
      envKeys: f.envKeys,
      pty: f.pty,
      ...(f.errorCode ? { errorCode: f.errorCode } : {}),
    },
  };
}

/** A signal (or the SIGKILL of DELETE) sent to a background process. */
export function processSignalRecord(sandboxId: string, pid: number, signal: string, errorCode?: string): AuditInput {
  return { type: 'process', sandboxId, data: { op: 'signal', pid, signal, ...(errorCode ? { errorCode } : {}) } };
}

export interface TerminalFields {
  sandboxId: string;
  pid: number;
  event: 'start' | 'end';
  session: string;
  bytesIn?: number;
  bytesOut?: number;
  durationMs?: number;
  exitCode?: number | null;
  signal?: string | null;
  /** The keystrokes, base64 (only when the operator turned recording on: KILN_AUDIT_PTY_INPUT=1). */
  input?: string;
  inputTruncated?: boolean;
}

/** A terminal session (a WebSocket attached to a PTY process): its start and its end with bytes in and out. */
export function terminalRecord(f: TerminalFields): AuditInput {
  const { sandboxId, ...data } = f;
  return { type: 'terminal', sandboxId, data: { ...data } };
}
