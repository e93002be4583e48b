/**
 * The REST contract, declared once with TypeBox: fastify validates with it, @fastify/swagger
 * publishes it at /openapi.json, and the CLI/SDK use the same static types.
 */
import { Type, type Static } from '@sinclair/typebox';
import { NetworkPolicyBody } from './network-schemas.js';
import { ERROR_CODES, type ErrorCode } from './error-codes.js';

export const StringMap = Type.Record(Type.String(), Type.String());

/** A code of the error registry (error-codes.ts); the OpenAPI description has the table. */
export const ErrorCodeSchema = Type.Unsafe<ErrorCode>({ type: 'string', enum: Object.keys(ERROR_CODES), description: 'A stable code from the error registry' });

export const ErrorBody = Type.Object(
  { error: Type.Object({ code: ErrorCodeSchema, message: Type.String(), details: Type.Optional(Type.Unknown()) }) },
  { title: 'Error', description: 'Every error response: {error:{code,message,details?}}' },
);

export const CreateSandboxBody = Type.Object(
  {
    memoryMiB: Type.Optional(Type.Integer({ description: 'Guest RAM in MiB. Default 1024.', minimum: 256, maximum: 65536 })),
    vcpus: Type.Optional(Type.Integer({ description: 'Virtual CPUs. Default 2.', minimum: 1, maximum: 16 })),
    diskGiB: Type.Optional(Type.Integer({ description: 'Scratch disk size (sparse) in GiB. Default 10.', minimum: 1, maximum: 1024 })),
    timeoutMs: Type.Optional(Type.Integer({ description: 'Lifetime in ms; 0 = none. Default 3600000.', minimum: 0 })),
    idleTimeoutMs: Type.Optional(Type.Integer({ description: 'Destroy after this long without an exec or file call; 0 = never. Default 0.', minimum: 0 })),
    autoPauseMs: Type.Optional(
      Type.Integer({
        description:
          'Pause the sandbox (memory kept, no CPU) after this long with no exec, file call, process or terminal I/O or proxied traffic; the next such call wakes it. 0 = never (default); else 1000 to 604800000.',
        minimum: 0,
      }),
    ),
    env: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Environment for every exec. Default {}.' })),
    labels: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Free-form labels. Default {}.' })),
    network: Type.Optional(NetworkPolicyBody),
    volumes: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 63, description: 'A volume of the caller (kiln volume create).' }),
            path: Type.String({ minLength: 2, maxLength: 256, description: 'Absolute guest path it is mounted at.' }),
            readOnly: Type.Optional(Type.Boolean({ description: 'Mount read-only (many sandboxes may); default false (one writer at a time).' })),
          },
          { additionalProperties: false },
        ),
        { maxItems: 8, description: 'Persistent volumes to attach and mount (docs/volumes.md).' },
      ),
    ),
    template: Type.Optional(Type.String({ minLength: 1, description: 'Start from this named template (e.g. a snapshot of another sandbox). Default: the template of the shape.' })),
  },
  { additionalProperties: false },
);
export type CreateSandboxBody = Static<typeof CreateSandboxBody>;

export const CreateSandboxQuery = Type.Object(
  { wait: Type.Optional(Type.Boolean({ description: 'Wait until running (default true); false returns 202 at once.' })) },
  { additionalProperties: false },
);

export const SandboxIdParams = Type.Object({ id: Type.String() });

export const SandboxView = Type.Object({
  id: Type.String(),
  state: Type.String(),
  spec: Type.Object({
    memoryMiB: Type.Integer(),
    vcpus: Type.Integer(),
    diskGiB: Type.Integer(),
    timeoutMs: Type.Integer(),
    idleTimeoutMs: Type.Optional(Type.Integer()),
    autoPauseMs: Type.Optional(Type.Integer()),
    env: StringMap,
    labels: StringMap,
    template: Type.Union([Type.String(), Type.Null()]),
    network: Type.Optional(Type.Unknown()),
    volumes: Type.Optional(Type.Array(Type.Object({ name: Type.String(), path: Type.String(), readOnly: Type.Boolean() }))),
  }),
  imageHash: Type.Union([Type.String(), Type.Null()]),
  step: Type.Union([Type.String(), Type.Null()]),
  error: Type.Union([Type.Object({ code: Type.String(), message: Type.String(), step: Type.Optional(Type.String()) }), Type.Null()]),
  vm: Type.Union([Type.Object({ pid: Type.Integer(), accel: Type.String() }), Type.Null()]),
  createdAt: Type.String(),
  readyAt: Type.Union([Type.String(), Type.Null()]),
  expiresAt: Type.Union([Type.String(), Type.Null()]),
  tenant: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'The owning tenant (null: the admin). On create, list and inspect.' })),
  accessToken: Type.Optional(Type.String({ description: "The sandbox's proxy access token (Kiln-Access-Token / X-Access-Token; docs/ports.md). On create and inspect, never in lists." })),
  autoPauseMs: Type.Optional(Type.Integer({ description: 'Idle time after which the sandbox pauses itself (0 = never).' })),
  pausedBy: Type.Optional(
    Type.Union([Type.Literal('user'), Type.Literal('auto'), Type.Null()], { description: "Who paused it while paused: 'user' (pause call) or 'auto' (auto-pause; the next guest call wakes it); null otherwise." }),
  ),
  runningSeconds: Type.Optional(Type.Number({ description: 'Seconds the sandbox has been running (since ready, paused time excluded).' })),
  pausedSeconds: Type.Optional(Type.Number({ description: 'Seconds the sandbox has spent paused (by the user or auto-pause).' })),
});
export type SandboxView = Static<typeof SandboxView>;

/** A guest account by name or numeric uid: "root" (the default) or "user" (uid 1000, home /home/user). */
export const GuestUser = Type.String({
  minLength: 1,
  maxLength: 64,
  pattern: '^[A-Za-z0-9_.][A-Za-z0-9_.-]*\\$?$',
  description: 'Guest account to run as: "root" (default) or "user" (uid 1000, home /home/user), or a numeric uid.',
});

export const ExecBody = Type.Object(
  {
    argv: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'Program and arguments (no shell).' })),
    shell: Type.Optional(Type.String({ minLength: 1, description: 'A command line run by /bin/sh -c.' })),
    env: Type.Optional(StringMap),
    cwd: Type.Optional(Type.String({ minLength: 1 })),
    stdin: Type.Optional(Type.Boolean({ description: 'Keep stdin open; feed it via POST …/execs/{execId}/stdin. Default false.' })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1, description: 'Kill the command after this long. Default none.' })),
    user: Type.Optional(GuestUser),
  },
  { additionalProperties: false },
);
export type ExecBody = Static<typeof ExecBody>;

export const ExecParams = Type.Object({ id: Type.String(), execId: Type.String() });
export const SignalBody = Type.Object({ signal: Type.String({ pattern: '^SIG[A-Z0-9]+$' }) }, { additionalProperties: false });

export const PathQuery = Type.Object(
  {
    path: Type.String({ minLength: 1, pattern: '^/' }),
    mode: Type.Optional(Type.String({ pattern: '^0?[0-7]{3,4}$' })),
    recursive: Type.Optional(Type.Boolean()),
    parents: Type.Optional(Type.Boolean({ description: 'Upload: create missing parent directories. Default false.' })),
  },
  { additionalProperties: false },
);

export const MkdirBody = Type.Object(
  { path: Type.String({ minLength: 1, pattern: '^/' }), recursive: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
);

export const EventsQuery = Type.Object(
  {
    after: Type.Optional(Type.Integer({ minimum: 0, description: 'Only events with a larger seq (a cursor: nextAfter of the previous page). Default 0.' })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, description: 'Page size. Default 1000.' })),
  },
  { additionalProperties: false },
);
