// What an op handler gets to work with.

import type { OpArgs, OpName, OpResult, StreamName, StreamSender } from '@kiln/protocol';
import type { Inbox } from '../inbox.js';

export interface AgentConfig {
  agentVersion: string;
  /** dockerd's API socket; default /run/docker.sock. */
  dockerSocket: string;
  /** Prefix for the files sys.configure writes (tests point it at a temp dir); default "". */
  sysRoot: string;
  /** The resident helper binary (kiln-guestctl); "" or missing = spawn `date`/`ip` instead. */
  guestCtlPath: string;
  /** The PTY helper (kiln-pty) that runs a background process on a terminal. */
  ptyHelperPath: string;
}

/** A running exec: its process group once spawned, and signals that arrived before that. */
export interface ExecEntry {
  pgid: number | undefined;
  pendingSignals: NodeJS.Signals[];
}

export interface SessionLike {
  readonly config: AgentConfig;
  /** Exec request id → its entry, from the moment the request is accepted until it replies. */
  readonly execs: Map<number, ExecEntry>;
  windowBytes: number;
}

export interface OpContext {
  /** The request id. */
  id: number;
  /** Aborted when the host cancels the request or the session ends. Its reason is an AgentError. */
  signal: AbortSignal;
  session: SessionLike;
  /** Agent→host stream `s` of this request (flow-controlled). */
  sender(s: StreamName): StreamSender;
  /** Host→agent stream `s` of this request. */
  input(s: StreamName): Inbox;
}

export type OpHandler<O extends OpName> = (ctx: OpContext, args: OpArgs<O>) => Promise<OpResult<O>>;
