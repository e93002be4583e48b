// Every header kind and every op's args and result, declared once as TypeBox schemas.
// Both ends validate what they receive against these: the host treats the guest as
// hostile, and the agent treats the host the same way.

import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import {
  ProcInfo,
  ProcListArgs,
  ProcListResult,
  ProcPidArgs,
  ProcReadArgs,
  ProcReadResult,
  ProcResizeArgs,
  ProcSignalArgs,
  ProcStartArgs,
  ProcStdinArgs,
  ProcWaitArgs,
} from './proc-messages.js';

// ---- building blocks -------------------------------------------------------------------

const Id = Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER });
/** An absolute guest path, no NUL bytes. */
const Path = Type.String({ minLength: 1, maxLength: 4096, pattern: '^/[^\\u0000]*$' });
const Mode = Type.Integer({ minimum: 0, maximum: 0o7777 });
const NoNul = (maxLength: number) => Type.String({ maxLength, pattern: '^[^\\u0000]*$' });
const Strict = { additionalProperties: false } as const;
const Empty = Type.Object({}, Strict);
/** Results may grow fields in later agents, so they are not strict. */
const EmptyResult = Type.Object({});

export const StreamName = Type.Union([
  Type.Literal('stdout'),
  Type.Literal('stderr'),
  Type.Literal('stdin'),
  Type.Literal('file'),
]);
export type StreamName = Static<typeof StreamName>;

export const WireError = Type.Object({
  code: Type.String({ minLength: 1, maxLength: 64 }),
  message: Type.String({ maxLength: 4096 }),
});
export type WireError = Static<typeof WireError>;

// ---- headers ---------------------------------------------------------------------------

/** host → agent: start request `id`. */
export const ReqHeader = Type.Object({
  k: Type.Literal('req'),
  id: Id,
  op: Type.String({ minLength: 1, maxLength: 64 }),
  args: Type.Unknown(),
});
/**
 * agent → host: final reply for `id`. `id: 0` with `ok:false` is a channel-level error (the
 * agent could not decode what the host sent); the host drops the connection on it.
 */
export const ResOkHeader = Type.Object({
  k: Type.Literal('res'),
  id: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  ok: Type.Literal(true),
  result: Type.Unknown(),
});
export const ResErrHeader = Type.Object({
  k: Type.Literal('res'),
  id: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
  ok: Type.Literal(false),
  error: WireError,
});
/** Either direction: a chunk of stream `s` of request `id`; the bytes are the frame body. */
export const DataHeader = Type.Object({ k: Type.Literal('data'), id: Id, s: StreamName });
/**
 * Either direction: stream `s` of request `id` is finished. `cancel: true` aborts it
 * instead: from the sender it means "discard what I sent" (an aborted upload), from the
 * receiver it means "stop sending" (a reader that went away).
 */
export const EndHeader = Type.Object({
  k: Type.Literal('end'),
  id: Id,
  s: StreamName,
  cancel: Type.Optional(Type.Boolean()),
});
/** Either direction: the receiver consumed `n` more bytes of stream `s` (flow control). */
export const AckHeader = Type.Object({
  k: Type.Literal('ack'),
  id: Id,
  s: StreamName,
  n: Type.Integer({ minimum: 1, maximum: 2 ** 32 }),
});

export const Header = Type.Union([ReqHeader, ResOkHeader, ResErrHeader, DataHeader, EndHeader, AckHeader]);
export type ReqHeader = Static<typeof ReqHeader>;
export type ResOkHeader = Static<typeof ResOkHeader>;
export type ResErrHeader = Static<typeof ResErrHeader>;
export type DataHeader = Static<typeof DataHeader>;
export type EndHeader = Static<typeof EndHeader>;
export type AckHeader = Static<typeof AckHeader>;
export type Header = Static<typeof Header>;

// ---- ops -------------------------------------------------------------------------------

export const HelloArgs = Type.Object({
  protocolVersion: Type.Integer({ minimum: 0 }),
  /** Flow-control window the host uses; the agent adopts it for its own sends. Default 1 MiB. */
  windowBytes: Type.Optional(Type.Integer({ minimum: 64 * 1024, maximum: 64 * 1024 * 1024 })),
  /**
   * Random id of the host-side client. On a virtio-serial port a new host can replace the
   * old one without the guest seeing EOF; a hello with a new sessionId makes the agent abort
   * everything the previous session started (killing its execs) and drop its replies.
   */
  sessionId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
}, Strict);
export const HelloResult = Type.Object({
  protocolVersion: Type.Integer(),
  agentVersion: Type.String({ maxLength: 64 }),
  bootId: Type.String({ maxLength: 64 }),
  hostname: Type.String({ maxLength: 255 }),
  pid: Type.Integer(),
});

export const HealthArgs = Empty;
export const HealthResult = Type.Object({
  uptimeMs: Type.Number({ minimum: 0 }),
  loadavg: Type.Tuple([Type.Number(), Type.Number(), Type.Number()]),
  memTotalKiB: Type.Integer({ minimum: 0 }),
  memAvailableKiB: Type.Integer({ minimum: 0 }),
  dockerReady: Type.Boolean(),
});

export const DockerReadyArgs = Type.Object({ timeoutMs: Type.Integer({ minimum: 0, maximum: 3_600_000 }) }, Strict);
export const DockerReadyResult = Type.Object({ waitedMs: Type.Number({ minimum: 0 }) });

/**
 * Exactly one of `argv` / `shell`. `env` is added to a base of PATH, HOME, USER, LOGNAME
 * and LANG (the agent's own environment is not inherited). `stdin` defaults to false
 * (the child gets /dev/null). `timeoutMs` (default: none) SIGKILLs the process group.
 * `user` is a name or numeric uid from the guest's /etc/passwd (default: root).
 * An `argv[0]` that cannot be found fails the request with NOT_FOUND; with `shell`, the
 * shell reports it as exit code 127.
 */
export const ExecArgs = Type.Object({
  argv: Type.Optional(Type.Array(NoNul(65536), { minItems: 1, maxItems: 4096 })),
  shell: Type.Optional(NoNul(65536)),
  env: Type.Optional(Type.Record(Type.String({ pattern: '^[^=\\u0000]{1,1024}$' }), NoNul(65536), Strict)),
  cwd: Type.Optional(Path),
  stdin: Type.Optional(Type.Boolean()),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 7 * 24 * 3_600_000 })),
  user: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_.][A-Za-z0-9_.-]*\\$?$' })),
}, Strict);
export const ExecResult = Type.Object({
  exitCode: Type.Union([Type.Integer(), Type.Null()]),
  signal: Type.Union([Type.String({ maxLength: 32 }), Type.Null()]),
  timedOut: Type.Boolean(),
  durationMs: Type.Number({ minimum: 0 }),
});

export const ExecSignalArgs = Type.Object({
  execId: Id,
  signal: Type.String({ pattern: '^SIG[A-Z0-9]+$', maxLength: 16 }),
}, Strict);
export const ExecSignalResult = EmptyResult;

/**
 * Opens a TCP connection from inside the guest to 127.0.0.1:`port` (the sandbox proxy's
 * path in: it needs no guest network at all). Host→guest bytes are stream `stdin`,
 * guest→host bytes stream `stdout`; an `end` of either half-closes that direction. The reply
 * comes once the connection is closed both ways. A refused connection fails with
 * CONNECTION_REFUSED; the host cancels (closes) with an `end` `cancel` on `stdin`.
 */
export const TcpConnectArgs = Type.Object({
  port: Type.Integer({ minimum: 1, maximum: 65535 }),
}, Strict);
export const TcpConnectResult = Type.Object({
  bytesIn: Type.Integer({ minimum: 0 }),
  bytesOut: Type.Integer({ minimum: 0 }),
});

/** Default mode 0o644; `mkdirs` (default false) creates missing parent directories. */
export const FileWriteArgs = Type.Object({
  path: Path,
  mode: Type.Optional(Mode),
  mkdirs: Type.Optional(Type.Boolean()),
}, Strict);
export const FileTransferResult = Type.Object({
  bytes: Type.Integer({ minimum: 0 }),
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$' }),
});
export const FileReadArgs = Type.Object({ path: Path }, Strict);

export const FileType = Type.Union([Type.Literal('file'), Type.Literal('dir'), Type.Literal('symlink'), Type.Literal('other')]);
export const FileStatArgs = Type.Object({ path: Path }, Strict);
/** lstat semantics: a symlink is reported as `symlink`, not followed. `mode` is the permission bits. */
export const FileStatResult = Type.Object({
  path: Path,
  type: FileType,
  size: Type.Integer({ minimum: 0 }),
  mode: Mode,
  mtimeMs: Type.Number(),
});
export const DirEntry = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 255 }),
  type: FileType,
  size: Type.Integer({ minimum: 0 }),
  mode: Mode,
  mtimeMs: Type.Number(),
});
/**
 * Entries are sorted by name and paged so each reply fits in one header: pass the
 * previous `nextOffset` as `offset` until it is null. `AgentClient.list` does this for you.
 */
export const FileListArgs = Type.Object({
  path: Path,
  offset: Type.Optional(Type.Integer({ minimum: 0 })),
}, Strict);
export const FileListResult = Type.Object({
  entries: Type.Array(DirEntry, { maxItems: 65536 }),
  nextOffset: Type.Union([Type.Integer({ minimum: 0 }), Type.Null()]),
});
/** `recursive` (default false) creates parents and accepts an existing directory. Default mode 0o755. */
export const FileMkdirArgs = Type.Object({ path: Path, recursive: Type.Optional(Type.Boolean()), mode: Type.Optional(Mode) }, Strict);
/** `recursive` (default false) removes a non-empty directory tree. Removing `/` is refused. */
export const FileRemoveArgs = Type.Object({ path: Path, recursive: Type.Optional(Type.Boolean()) }, Strict);

/** rename(2): replaces an existing file at `to` (not a non-empty directory); both on one filesystem. */
export const FileRenameArgs = Type.Object({ from: Path, to: Path }, Strict);

/** Used after a snapshot restore to make a clone unique. Every field is optional. */
export const SysConfigureArgs = Type.Object({
  /** Wall clock to set, ms since the epoch. */
  timeEpochMs: Type.Optional(Type.Integer({ minimum: 946_684_800_000, maximum: 32_503_680_000_000 })),
  hostname: Type.Optional(Type.String({ minLength: 1, maxLength: 63, pattern: '^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$' })),
  /** Bytes mixed into /dev/urandom (not credited as entropy). At most 4096 bytes. */
  entropyHex: Type.Optional(Type.String({ minLength: 2, maxLength: 8192, pattern: '^([0-9a-fA-F]{2})+$' })),
  /** 32 lowercase hex digits, written to /etc/machine-id. */
  machineId: Type.Optional(Type.String({ pattern: '^[0-9a-f]{32}$' })),
}, Strict);

const Ipv4 = Type.String({ maxLength: 15, pattern: '^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$' });

/**
 * Gives the guest its network identity at run time (after a boot or a snapshot restore): the
 * virtio-net interface gets `mac` (a NIC restored from a snapshot still has the template's),
 * its addresses are flushed and `address` added, the default route goes via `gateway`
 * (absent: no default route), /etc/resolv.conf names `dns`, IPv6 and router advertisements
 * are turned off. Idempotent. `waitMs` (default 10000) is how long to wait for the interface
 * to appear (its driver may still be loading).
 */
export const SysNetworkArgs = Type.Object({
  mac: Type.String({ pattern: '^[0-9a-f]{2}(:[0-9a-f]{2}){5}$' }),
  /** IPv4 address with prefix length, e.g. 10.210.0.2/30. */
  address: Type.String({ maxLength: 18, pattern: '^[0-9.]{7,15}/([0-9]|[12][0-9]|3[0-2])$' }),
  gateway: Type.Optional(Ipv4),
  dns: Type.Array(Ipv4, { maxItems: 3 }),
  mtu: Type.Optional(Type.Integer({ minimum: 576, maximum: 9000 })),
  waitMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 120_000 })),
}, Strict);
export const SysNetworkResult = Type.Object({
  interface: Type.String({ maxLength: 32 }),
  durationMs: Type.Number({ minimum: 0 }),
});

/** The op table: name → args and result schema. */
export const Ops = {
  hello: { args: HelloArgs, result: HelloResult },
  health: { args: HealthArgs, result: HealthResult },
  'docker.ready': { args: DockerReadyArgs, result: DockerReadyResult },
  exec: { args: ExecArgs, result: ExecResult },
  'exec.signal': { args: ExecSignalArgs, result: ExecSignalResult },
  'tcp.connect': { args: TcpConnectArgs, result: TcpConnectResult },
  'file.write': { args: FileWriteArgs, result: FileTransferResult },
  'file.read': { args: FileReadArgs, result: FileTransferResult },
  'file.stat': { args: FileStatArgs, result: FileStatResult },
  'file.list': { args: FileListArgs, result: FileListResult },
  'file.mkdir': { args: FileMkdirArgs, result: EmptyResult },
  'file.remove': { args: FileRemoveArgs, result: EmptyResult },
  'file.rename': { args: FileRenameArgs, result: EmptyResult },
  'sys.configure': { args: SysConfigureArgs, result: EmptyResult },
  'sys.network': { args: SysNetworkArgs, result: SysNetworkResult },
  'proc.start': { args: ProcStartArgs, result: ProcInfo },
  'proc.list': { args: ProcListArgs, result: ProcListResult },
  'proc.get': { args: ProcPidArgs, result: ProcInfo },
  'proc.read': { args: ProcReadArgs, result: ProcReadResult },
  'proc.stdin': { args: ProcStdinArgs, result: EmptyResult },
  'proc.signal': { args: ProcSignalArgs, result: EmptyResult },
  'proc.wait': { args: ProcWaitArgs, result: ProcInfo },
  'proc.resize': { args: ProcResizeArgs, result: EmptyResult },
} as const satisfies Record<string, { args: TSchema; result: TSchema }>;

export type OpName = keyof typeof Ops;
export type OpArgs<O extends OpName> = Static<(typeof Ops)[O]['args']>;
export type OpResult<O extends OpName> = Static<(typeof Ops)[O]['result']>;

export type HelloArgs = OpArgs<'hello'>;
export type HelloResult = OpResult<'hello'>;
export type HealthResult = OpResult<'health'>;
export type DockerReadyResult = OpResult<'docker.ready'>;
export type ExecArgs = OpArgs<'exec'>;
export type ExecResult = OpResult<'exec'>;
export type ExecSignalArgs = OpArgs<'exec.signal'>;
export type TcpConnectArgs = OpArgs<'tcp.connect'>;
export type TcpConnectResult = OpResult<'tcp.connect'>;
export type FileWriteArgs = OpArgs<'file.write'>;
export type FileTransferResult = OpResult<'file.write'>;
export type FileStatResult = OpResult<'file.stat'>;
export type FileListArgs = OpArgs<'file.list'>;
export type FileListResult = OpResult<'file.list'>;
export type DirEntry = Static<typeof DirEntry>;
export type FileMkdirArgs = OpArgs<'file.mkdir'>;
export type FileRemoveArgs = OpArgs<'file.remove'>;
export type SysConfigureArgs = OpArgs<'sys.configure'>;
export type SysNetworkArgs = OpArgs<'sys.network'>;
export type SysNetworkResult = OpResult<'sys.network'>;
export type ProcStartArgs = OpArgs<'proc.start'>;
export type ProcInfo = OpResult<'proc.start'>;
export type ProcReadArgs = OpArgs<'proc.read'>;
export type ProcReadResult = OpResult<'proc.read'>;
export type ProcChunk = ProcReadResult['chunks'][number];

// ---- compiled checkers -----------------------------------------------------------------

const headerCheck = TypeCompiler.Compile(Header);
const checks = new Map<string, { args: TypeCheck<TSchema>; result: TypeCheck<TSchema> }>();
for (const [op, { args, result }] of Object.entries(Ops)) {
  checks.set(op, { args: TypeCompiler.Compile(args), result: TypeCompiler.Compile(result) });
}

export function isOpName(op: string): op is OpName {
  return checks.has(op);
}

/** Validates a decoded header; returns it typed, or a message naming the first bad field. */
export function checkHeader(value: unknown): { ok: true; header: Header } | { ok: false; message: string } {
  if (headerCheck.Check(value)) return { ok: true, header: value };
  return { ok: false, message: firstError(headerCheck, value) };
}

/** Validates an op's args (agent side) or result (host side). */
export function checkOp(op: OpName, part: 'args' | 'result', value: unknown): { ok: true } | { ok: false; message: string } {
  const check = (checks.get(op) as { args: TypeCheck<TSchema>; result: TypeCheck<TSchema> })[part];
  if (check.Check(value)) return { ok: true };
  return { ok: false, message: firstError(check, value) };
}

function firstError(check: TypeCheck<TSchema>, value: unknown): string {
  const err = check.Errors(value).First();
  if (!err) return 'invalid';
  return `${err.path || '/'}: ${err.message}`;
}
