// Coded errors shared by both ends of the guest protocol. One registry of codes, so the
// daemon and SDK can map wire codes back to their own error classes.

/** Codes the agent puts on the wire in `{k:"res", ok:false, error:{code}}`. */
export const WireErrorCode = {
  NOT_FOUND: 'NOT_FOUND',
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  EXISTS: 'EXISTS',
  IS_DIRECTORY: 'IS_DIRECTORY',
  NOT_DIRECTORY: 'NOT_DIRECTORY',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  TIMEOUT: 'TIMEOUT',
  UNKNOWN_OP: 'UNKNOWN_OP',
  VERSION_MISMATCH: 'VERSION_MISMATCH',
  CANCELLED: 'CANCELLED',
  /** A bounded table is full (e.g. too many running background processes). */
  RESOURCE_EXHAUSTED: 'RESOURCE_EXHAUSTED',
  /** The process exited or its stdin is closed. */
  NOT_RUNNING: 'NOT_RUNNING',
  /** tcp.connect: nothing listens on the port in the guest. */
  CONNECTION_REFUSED: 'CONNECTION_REFUSED',
  INTERNAL: 'INTERNAL',
} as const;
export type WireErrorCode = (typeof WireErrorCode)[keyof typeof WireErrorCode];

/** Codes raised locally (never sent by a well-behaved agent). */
export const LocalErrorCode = {
  /** The channel failed or was closed while the request was pending. */
  CHANNEL_CLOSED: 'CHANNEL_CLOSED',
  /** The peer sent something that is well-framed but breaks the protocol (bad result shape, flow-control overrun, hash mismatch). */
  PROTOCOL_ERROR: 'PROTOCOL_ERROR',
} as const;
export type LocalErrorCode = (typeof LocalErrorCode)[keyof typeof LocalErrorCode];

/** Codes of framing errors; any of them poisons the connection. */
export const FrameErrorCode = {
  FRAME_TOO_LARGE: 'FRAME_TOO_LARGE',
  MALFORMED_FRAME: 'MALFORMED_FRAME',
  MALFORMED_HEADER: 'MALFORMED_HEADER',
} as const;
export type FrameErrorCode = (typeof FrameErrorCode)[keyof typeof FrameErrorCode];

export type ProtocolErrorCode = FrameErrorCode | typeof LocalErrorCode.PROTOCOL_ERROR;

/** A violation of the wire protocol by the peer. The connection it came from must be dropped. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The failure of one request: an error reply from the agent, a timeout, or a closed channel. */
export class AgentError extends Error {
  override readonly name = 'AgentError';
  constructor(
    readonly code: WireErrorCode | LocalErrorCode | string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const ERRNO_TO_CODE: Record<string, WireErrorCode> = {
  ENOENT: 'NOT_FOUND',
  ESRCH: 'NOT_FOUND',
  EACCES: 'PERMISSION_DENIED',
  EPERM: 'PERMISSION_DENIED',
  EROFS: 'PERMISSION_DENIED',
  EEXIST: 'EXISTS',
  ENOTEMPTY: 'EXISTS',
  EISDIR: 'IS_DIRECTORY',
  ENOTDIR: 'NOT_DIRECTORY',
  EINVAL: 'INVALID_ARGUMENT',
  ENAMETOOLONG: 'INVALID_ARGUMENT',
  ELOOP: 'INVALID_ARGUMENT',
  EXDEV: 'INVALID_ARGUMENT',
  ETIMEDOUT: 'TIMEOUT',
  ECONNREFUSED: 'CONNECTION_REFUSED',
};

/**
 * Maps a Node errno error (`err.code === "ENOENT"` …) to a wire code. `ENOTEMPTY`
 * (removing a non-empty directory without `recursive`) maps to `EXISTS`: the entries exist.
 */
export function errnoToCode(err: unknown): WireErrorCode {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code in ERRNO_TO_CODE) return ERRNO_TO_CODE[code] as WireErrorCode;
  return 'INTERNAL';
}
