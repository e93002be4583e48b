/** Request and response schemas of the background-process and terminal routes (routes/processes.ts, routes/pty.ts). */
import { Type, type Static } from '@sinclair/typebox';
import { GuestUser, StringMap } from './schemas.js';

/** Terminal size bounds (the guest protocol's PTY_LIMITS; a daemon unit test checks they agree). */
export const PTY_LIMITS = { maxCols: 1000, maxRows: 500 } as const;

const Strict = { additionalProperties: false } as const;
const Cols = Type.Integer({ minimum: 1, maximum: PTY_LIMITS.maxCols, description: `Terminal columns, 1..${PTY_LIMITS.maxCols}.` });
const Rows = Type.Integer({ minimum: 1, maximum: PTY_LIMITS.maxRows, description: `Terminal rows, 1..${PTY_LIMITS.maxRows}.` });
const Term = Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.+-]+$', description: 'TERM of a PTY. Default xterm-256color.' });
const Cwd = Type.String({ minLength: 1, maxLength: 4096, pattern: '^/' });

export const ProcessStartBody = Type.Object(
  {
    argv: Type.Optional(Type.Array(Type.String(), { minItems: 1, maxItems: 4096, description: 'Program and arguments (no shell).' })),
    shell: Type.Optional(Type.String({ minLength: 1, description: 'A command line run by /bin/sh -c.' })),
    env: Type.Optional(StringMap),
    cwd: Type.Optional(Cwd),
    user: Type.Optional(GuestUser),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 24 * 3_600_000, description: 'SIGKILL the process group after this long. Default none.' })),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\u0000-\\u001f]*$', description: 'A label of your own, shown in listings.' })),
    stdin: Type.Optional(Type.Boolean({ description: 'Keep stdin open for POST …/stdin. Default false (stdin is /dev/null). A PTY always takes input.' })),
    pty: Type.Optional(Type.Object({ cols: Cols, rows: Rows }, Strict)),
    term: Type.Optional(Term),
  },
  Strict,
);
export type ProcessStartBody = Static<typeof ProcessStartBody>;

export const ProcessInfo = Type.Object({
  pid: Type.Integer(),
  tag: Type.Union([Type.String(), Type.Null()]),
  argv: Type.Array(Type.String()),
  cwd: Type.String(),
  user: Type.String(),
  pty: Type.Boolean(),
  state: Type.Union([Type.Literal('running'), Type.Literal('exited')]),
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  signal: Type.Union([Type.String(), Type.Null()]),
  timedOut: Type.Boolean(),
  stdinOpen: Type.Boolean(),
  startedAt: Type.String(),
  endedAt: Type.Union([Type.String(), Type.Null()]),
  outputBytes: Type.Integer({ description: 'Offset of the end of the output (bytes ever written).' }),
  droppedBytes: Type.Integer({ description: 'Offset of the oldest byte the output buffer still holds.' }),
});
export type ProcessInfo = Static<typeof ProcessInfo>;

export const ProcessParams = Type.Object({ id: Type.String(), pid: Type.Integer({ minimum: 1, maximum: 2 ** 22 }) });
export type ProcessParams = Static<typeof ProcessParams>;

export const OutputQuery = Type.Object(
  {
    offset: Type.Optional(Type.Integer({ minimum: 0, description: 'Byte offset to start from. Default 0.' })),
    follow: Type.Optional(Type.Boolean({ description: 'Keep streaming until the process exits. Default false: end at the current end.' })),
  },
  Strict,
);
export type OutputQuery = Static<typeof OutputQuery>;

export const StdinJsonBody = Type.Object({ data: Type.String({ maxLength: 1_400_000, pattern: '^[A-Za-z0-9+/]*={0,2}$', description: 'Bytes, base64.' }) }, Strict);
export const ProcessSignalBody = Type.Object({ signal: Type.String({ pattern: '^SIG[A-Z0-9]+$', maxLength: 16 }) }, Strict);
export const ResizeBody = Type.Object({ cols: Cols, rows: Rows }, Strict);

export const PtyQuery = Type.Object(
  {
    cols: Type.Optional(Cols),
    rows: Type.Optional(Rows),
    term: Type.Optional(Term),
    user: Type.Optional(GuestUser),
    cwd: Type.Optional(Cwd),
    cmd: Type.Optional(Type.String({ minLength: 1, maxLength: 65536, description: 'A command line for /bin/sh -c. Default: the user\'s login shell.' })),
  },
  Strict,
);
export type PtyQuery = Static<typeof PtyQuery>;
