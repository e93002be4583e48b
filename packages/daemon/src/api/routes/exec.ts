/**
 * Exec: the response is an NDJSON stream of events, in order:
 *   {"type":"started","execId":"…"}
 *   {"type":"stdout"|"stderr","data":"<base64>"}   (as the guest produces them)
 *   {"type":"exit","exitCode":n|null,"signal":s|null,"timedOut":b,"durationMs":n}
 *   or {"type":"error","error":{code,message}}
 * With stdin:true, the caller streams bytes to POST /v1/sandboxes/:id/execs/:execId/stdin.
 * If the caller disconnects before the exit event, the command is killed.
 * Flow control is end to end (body-stream.ts): a chunk of output is acknowledged to the guest
 * only once the response took it, so a caller that stops reading stops the command (it blocks
 * writing its pipe in the guest) and kilnd holds at most the guest protocol's window per stream.
 * The exec's audit record (argv, cwd, exit, duration, bytes of output) is durable before the
 * exit event is sent: a caller that saw the exit can rely on the record.
 * An auto-paused sandbox is woken first (useAgent), and stays awake while the exec runs.
 */
import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import type { Readable } from 'node:stream';
import { BodyStream, sendBody } from '../body-stream.js';
import { invalidArgument, KilnError, toKilnError } from '../../errors.js';
import type { SandboxManager } from '../../sandbox/manager.js';
import { ExecBody, ExecParams, SandboxIdParams, SignalBody } from '@kiln/contract';
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
      // The exec starts under the sandbox's shared lock (never while a pause, snapshot or destroy
      // runs), held until this turn ends: the exec request below is sent in this turn, with no await before it.
      const { agent, rec, release } = await manager.useAgent(req.params.id, 'exec');
      queueMicrotask(release);
      // An exec in progress keeps the sandbox from auto-pausing (its caller waits on it).
      const awake = manager.hold(req.params.id);
      const execId = `${req.params.id}.${++seq}`;
      const out = new BodyStream();
      const bytes = { stdout: 0, stderr: 0 };
      // Resolves once the response took the event: the agent client acks output only then.
      const send = (ev: Record<string, unknown>): Promise<void> => out.write(JSON.stringify(ev) + '\n');
      const handle = agent.exec(
        {
          ...(argv ? { argv } : {}),
          ...(shell ? { shell } : {}),
          env: { ...rec.spec.env, ...(req.body.env ?? {}) },
          ...(req.body.cwd || rec.spec.workdir ? { cwd: req.body.cwd || rec.spec.workdir } : {}),
          stdin: req.body.stdin ?? false,
          ...(req.body.timeoutMs ? { timeoutMs: req.body.timeoutMs } : {}),
          ...(req.body.user !== undefined || rec.spec.user ? { user: req.body.user ?? rec.spec.user } : {}),
        },
        {
          onStdout: (b: Buffer) => {
            bytes.stdout += b.length;
            return send({ type: 'stdout', data: b.toString('base64') });
          },
          onStderr: (b: Buffer) => {
            bytes.stderr += b.length;
            return send({ type: 'stderr', data: b.toString('base64') });
          },
        },
      );
      running.set(execId, { sandboxId: req.params.id, writeStdin: (b) => handle.writeStdin(b), endStdin: () => handle.endStdin(), signal: (s) => handle.signal(s) });
      let finished = false;
      reply.raw.on('close', () => {
        if (!finished) void handle.signal('SIGKILL').catch(() => undefined);
      });
      void send({ type: 'started', execId });
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
            await send({ type: 'exit', ...r });
          },
          async (err: unknown) => {
            const e = fromGuestError(err);
            await record(undefined, e.code);
            await send({ type: 'error', error: e.toJSON() });
          },
        )
        .catch((err: unknown) => send({ type: 'error', error: toKilnError(err).toJSON() })) // the audit record could not be written
        .finally(() => {
          finished = true;
          awake();
          running.delete(execId);
          out.end();
        });
      return sendBody(reply, out, 'application/x-ndjson');
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
