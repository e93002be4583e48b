/**
 * Exec: the response is an NDJSON stream of events, in order:
 *   {"type":"started","execId":"…"}
 *   {"type":"stdout"|"stderr","data":"<base64>"}   (as the guest produces them)
 *   {"type":"exit","exitCode":n|null,"signal":s|null,"timedOut":b,"durationMs":n}
 *   or {"type":"error","error":{code,message}}
 * With stdin:true, the caller streams bytes to POST /v1/sandboxes/:id/execs/:execId/stdin.
 * If the caller disconnects before the exit event, the command is killed.
 * The exec's audit record (argv, cwd, exit, duration, bytes of output) is durable before the
 * exit event is sent: a caller that saw the exit can rely on the record.
 */
import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { PassThrough, type Readable } from 'node:stream';
import { invalidArgument, KilnError, toKilnError } from '../../errors.js';
import type { SandboxManager } from '../../sandbox/manager.js';
import { ExecBody, ExecParams, SandboxIdParams, SignalBody } from '../schemas.js';
import { fromGuestError } from '../guest-errors.js';
import { execRecord, NO_AUDIT, type AuditSink } from '../../audit/guest-records.js';

interface RunningExec {
  sandboxId: string;
  writeStdin(b: Buffer): Promise<void>;
  endStdin(): void;
  signal(sig: string): Promise<void>;
}

export function registerExecRoutes(app: FastifyInstance, manager: SandboxManager, audit: AuditSink = NO_AUDIT): void {
  const running = new Map<string, RunningExec>();
  let seq = 0;

  app.post<{ Params: Static<typeof SandboxIdParams>; Body: ExecBody }>(
    '/v1/sandboxes/:id/exec',
    { schema: { summary: 'Run a command in the guest; streams NDJSON events', params: SandboxIdParams, body: ExecBody } },
    async (req, reply) => {
      const { argv, shell } = req.body;
      if ((argv === undefined) === (shell === undefined)) throw invalidArgument('exactly one of argv or shell is required', { field: 'argv' });
      const agent = manager.agentFor(req.params.id, 'exec');
      const rec = manager.get(req.params.id);
      const execId = `${req.params.id}.${++seq}`;
      const out = new PassThrough();
      const bytes = { stdout: 0, stderr: 0 };
      const send = (ev: Record<string, unknown>): void => {
        if (!out.writableEnded) out.write(JSON.stringify(ev) + '\n');
      };
      const handle = agent.exec(
        {
          ...(argv ? { argv } : {}),
          ...(shell ? { shell } : {}),
          env: { ...rec.spec.env, ...(req.body.env ?? {}) },
          ...(req.body.cwd ? { cwd: req.body.cwd } : {}),
          stdin: req.body.stdin ?? false,
          ...(req.body.timeoutMs ? { timeoutMs: req.body.timeoutMs } : {}),
          ...(req.body.user !== undefined ? { user: req.body.user } : {}),
        },
        {
          onStdout: (b: Buffer) => {
            bytes.stdout += b.length;
            send({ type: 'stdout', data: b.toString('base64') });
          },
          onStderr: (b: Buffer) => {
            bytes.stderr += b.length;
            send({ type: 'stderr', data: b.toString('base64') });
          },
        },
      );
      running.set(execId, { sandboxId: req.params.id, writeStdin: (b) => handle.writeStdin(b), endStdin: () => handle.endStdin(), signal: (s) => handle.signal(s) });
      let finished = false;
      reply.raw.on('close', () => {
        if (!finished) void handle.signal('SIGKILL').catch(() => undefined);
      });
      send({ type: 'started', execId });
      const record = (r?: Parameters<typeof execRecord>[0]['result'], errorCode?: string) =>
        audit.append(
          execRecord({
            sandboxId: req.params.id,
            execId,
            ...(argv ? { argv } : {}),
            ...(shell !== undefined ? { shell } : {}),
            ...(req.body.cwd ? { cwd: req.body.cwd } : {}),
            ...(req.body.user !== undefined ? { user: req.body.user } : {}),
            envKeys: Object.keys(req.body.env ?? {}),
            stdin: req.body.stdin ?? false,
            stdoutBytes: bytes.stdout,
            stderrBytes: bytes.stderr,
            ...(r ? { result: r } : {}),
            ...(errorCode ? { errorCode } : {}),
          }),
        );
      handle.result
        .then(
          async (r) => {
            await record(r);
            send({ type: 'exit', ...r });
          },
          async (err: unknown) => {
            const e = fromGuestError(err);
            await record(undefined, e.code);
            send({ type: 'error', error: e.toJSON() });
          },
        )
        .catch((err: unknown) => send({ type: 'error', error: toKilnError(err).toJSON() })) // the audit record could not be written
        .finally(() => {
          finished = true;
          running.delete(execId);
          out.end();
        });
      return reply.type('application/x-ndjson').header('cache-control', 'no-store').send(out);
    },
  );

  const lookup = (params: Static<typeof ExecParams>): RunningExec => {
    const ex = running.get(params.execId);
    if (!ex || ex.sandboxId !== params.id) throw new KilnError('EXEC_NOT_FOUND', `no running exec ${params.execId} in sandbox ${params.id}`, { status: 404 });
    return ex;
  };

  app.post<{ Params: Static<typeof ExecParams> }>(
    '/v1/sandboxes/:id/execs/:execId/stdin',
    { schema: { summary: 'Stream bytes (application/octet-stream) to a running exec\'s stdin; EOF closes it', params: ExecParams } },
    async (req, reply) => {
      const ex = lookup(req.params);
      const body = req.body as Readable | undefined;
      let bytes = 0;
      if (body && typeof (body as Readable)[Symbol.asyncIterator] === 'function') {
        for await (const chunk of body) {
          const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
          bytes += b.length;
          await ex.writeStdin(b).catch((err: unknown) => {
            throw fromGuestError(err);
          });
        }
      }
      ex.endStdin();
      return reply.send({ bytes });
    },
  );

  app.post<{ Params: Static<typeof ExecParams>; Body: Static<typeof SignalBody> }>(
    '/v1/sandboxes/:id/execs/:execId/signal',
    { schema: { summary: 'Send a signal to a running exec\'s process group', params: ExecParams, body: SignalBody } },
    async (req) => {
      const ex = lookup(req.params);
      await ex.signal(req.body.signal).catch((err: unknown) => {
        throw fromGuestError(err);
      });
      return { ok: true };
    },
  );
}
