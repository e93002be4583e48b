// Background processes (proc.*): args and results, declared once for both ends.
//
// A background process belongs to the agent, not to the host session that started it: a new
// host session, a dropped connection or a timed-out request never kills it. Its output goes
// to a bounded ring buffer (stdout, stderr and a PTY's output share one sequence of absolute
// byte offsets); readers pull from any offset (`proc.read`), so a slow reader never blocks
// the process or other readers: it sees `dropped` when the ring overwrote what it asked for.

import { Type } from '@sinclair/typebox';

const Strict = { additionalProperties: false } as const;
const NoNul = (maxLength: number) => Type.String({ maxLength, pattern: '^[^\\u0000]*$' });
const Path = Type.String({ minLength: 1, maxLength: 4096, pattern: '^/[^\\u0000]*$' });
const Pid = Type.Integer({ minimum: 1, maximum: 2 ** 22 });
const Offset = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
const UserName = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.][A-Za-z0-9_.-]*\\$?$' });
const Base64 = (maxLength: number) => Type.String({ maxLength, pattern: '^[A-Za-z0-9+/]*={0,2}$' });

/** Terminal sizes a PTY accepts. */
export const PTY_LIMITS = { maxCols: 1000, maxRows: 500 } as const;
export const PtySize = Type.Object({
  cols: Type.Integer({ minimum: 1, maximum: PTY_LIMITS.maxCols }),
  rows: Type.Integer({ minimum: 1, maximum: PTY_LIMITS.maxRows }),
}, Strict);

/** Largest decoded chunk of `proc.stdin` (its base64 must fit in one header). */
export const PROC_STDIN_MAX_BYTES = 32 * 1024;
/** Most bytes one `proc.read` returns (base64 in the reply header). */
export const PROC_READ_MAX_BYTES = 32 * 1024;

/**
 * Exactly one of `argv` / `shell`, or neither with `pty` (the user's login shell). As exec:
 * `env` is added to a base of PATH, HOME, USER, LOGNAME, SHELL, LANG (and TERM with a PTY);
 * `user` defaults to root; `timeoutMs` SIGKILLs the process group. `stdin` (default false)
 * keeps a pipe open for `proc.stdin`; a PTY always takes input. `pty` runs the command on a
 * new pseudo-terminal of that size (through the kiln-pty helper); `term` (default
 * xterm-256color) is its TERM.
 */
export const ProcStartArgs = Type.Object({
  argv: Type.Optional(Type.Array(NoNul(65536), { minItems: 1, maxItems: 4096 })),
  shell: Type.Optional(NoNul(65536)),
  env: Type.Optional(Type.Record(Type.String({ pattern: '^[^=\\u0000]{1,1024}$' }), NoNul(65536), Strict)),
  cwd: Type.Optional(Path),
  user: Type.Optional(UserName),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 24 * 3_600_000 })),
  tag: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f]*$' })),
  stdin: Type.Optional(Type.Boolean()),
  pty: Type.Optional(PtySize),
  term: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.+-]+$' })),
}, Strict);

export const ProcState = Type.Union([Type.Literal('running'), Type.Literal('exited')]);

/**
 * What the agent knows of a process. Times are ms since the epoch (guest clock). `argv` is
 * shortened for display (each argument to 256 characters, at most 32 of them).
 * `outputBytes` is the offset of the end of its output; `droppedBytes` the offset of the
 * oldest byte still in the ring (everything before it was overwritten).
 */
export const ProcInfo = Type.Object({
  pid: Pid,
  tag: Type.Union([Type.String({ maxLength: 128 }), Type.Null()]),
  argv: Type.Array(Type.String({ maxLength: 260 }), { maxItems: 33 }),
  cwd: Type.String({ maxLength: 4096 }),
  user: Type.String({ maxLength: 64 }),
  pty: Type.Boolean(),
  state: ProcState,
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  signal: Type.Union([Type.String({ maxLength: 32 }), Type.Null()]),
  timedOut: Type.Boolean(),
  startedAt: Type.Number({ minimum: 0 }),
  endedAt: Type.Union([Type.Number({ minimum: 0 }), Type.Null()]),
  outputBytes: Offset,
  droppedBytes: Offset,
  stdinOpen: Type.Boolean(),
});

export const ProcPidArgs = Type.Object({ pid: Pid }, Strict);

/** Paged so that each reply fits in one header: pass `nextOffset` as `offset` until it is null. */
export const ProcListArgs = Type.Object({ offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000 })) }, Strict);
export const ProcListResult = Type.Object({
  processes: Type.Array(ProcInfo, { maxItems: 4096 }),
  nextOffset: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
});

/**
 * Output from `offset` on, at most `maxBytes` (default and cap PROC_READ_MAX_BYTES). With
 * `waitMs`, a read at the end of a running process's output waits up to that long for more
 * (or for the exit) before answering with nothing.
 */
export const ProcReadArgs = Type.Object({
  pid: Pid,
  offset: Offset,
  maxBytes: Type.Optional(Type.Integer({ minimum: 1, maximum: PROC_READ_MAX_BYTES })),
  waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 120_000 })),
}, Strict);
export const OutputType = Type.Union([Type.Literal('stdout'), Type.Literal('stderr'), Type.Literal('pty')]);
export const ProcChunk = Type.Object({ type: OutputType, offset: Offset, data: Base64(64 * 1024) });
/**
 * `dropped`: bytes between the requested offset and the first chunk that the ring no longer
 * holds. `nextOffset`: where the next read continues. `end`: the end of the output now.
 * `exit` is set once the process exited and `nextOffset` reached the end of its output.
 */
export const ProcReadResult = Type.Object({
  chunks: Type.Array(ProcChunk, { maxItems: 1024 }),
  dropped: Offset,
  nextOffset: Offset,
  end: Offset,
  exit: Type.Union([
    Type.Object({ exitCode: Type.Union([Type.Integer(), Type.Null()]), signal: Type.Union([Type.String({ maxLength: 32 }), Type.Null()]) }),
    Type.Null(),
  ]),
});

/** Writes `data` (base64) to the process's stdin, then closes it if `close`. Resolves once the pipe took the bytes. */
export const ProcStdinArgs = Type.Object({
  pid: Pid,
  data: Base64(Math.ceil(PROC_STDIN_MAX_BYTES / 3) * 4),
  close: Type.Optional(Type.Boolean()),
}, Strict);

/** Signals the process group (a PTY's: the helper passes catchable signals on to its child). */
export const ProcSignalArgs = Type.Object({ pid: Pid, signal: Type.String({ pattern: '^SIG[A-Z0-9]+$', maxLength: 16 }) }, Strict);

/** Waits up to `timeoutMs` (default 25 000) for the exit; returns the info either way. */
export const ProcWaitArgs = Type.Object({ pid: Pid, timeoutMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 120_000 })) }, Strict);

export const ProcResizeArgs = Type.Object({
  pid: Pid,
  cols: Type.Integer({ minimum: 1, maximum: PTY_LIMITS.maxCols }),
  rows: Type.Integer({ minimum: 1, maximum: PTY_LIMITS.maxRows }),
}, Strict);
