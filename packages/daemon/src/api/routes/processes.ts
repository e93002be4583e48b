/**
 * Background processes (the guest agent's proc.* ops). A process id is its guest pid. A
 * process belongs to the guest, not to the HTTP client that started it: a client that goes
 * away never kills it. Its output is a bounded buffer in the guest (1 MiB), read from any
 * byte offset as NDJSON:
 *   {"type":"dropped","bytes":N}                    (the offset asked for is older than the buffer)
 *   {"type":"stdout"|"stderr"|"pty","data":"<base64>","offset":N}
 *   {"type":"exit","exitCode":n|null,"signal":s|null}  (then the stream ends)
 * Without follow the stream ends at the output's current end. The next read from the guest is
 * asked for only once the response took the previous one, so a client that does not read
 * costs kilnd one read (32 KiB) per stream; the process itself is never held back (its
 * buffer overwrites, and the late reader sees `dropped`).
 * Every route wakes an auto-paused sandbox first; output read counts as activity, and a
 * follower or waiter keeps the sandbox awake while it waits (SandboxManager.hold).
 */
import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { Readable } from 'node:stream';
import { PROC_STDIN_MAX_BYTES, type ProcInfo } from '@kiln/protocol';
import { invalidArgument } from '../../errors.js';
import type { SandboxManager } from '../../sandbox/manager.js';
import { fromGuestError, fromProcessError } from '../guest-errors.js';
import { NO_AUDIT, type AuditSink } from '../../audit/guest-records.js';
import { processSignalRecord, processStartRecord } from '../../audit/process-records.js';
import {
  OutputQuery,
  ProcessInfo,
  ProcessParams,
  ProcessSignalBody,
  ProcessStartBody,
  ResizeBody,
  StdinJsonBody,
  SandboxIdParams,
} from '@kiln/contract';
import type { GuestAgent } from '../../sandbox/guest-agent.js';

/** How long one read or wait blocks in the guest before the host asks again. */
const POLL_MS = 20_000;
const POLL_TIMEOUT_MS = POLL_MS + 15_000;

export function processView(p: ProcInfo): ProcessInfo {
  return {
    pid: p.pid,
    tag: p.tag,
    argv: p.argv,
    cwd: p.cwd,
    user: p.user,
    pty: p.pty,
    state: p.state,
    exitCode: p.exitCode,
    signal: p.signal,
    timedOut: p.timedOut,
    stdinOpen: p.stdinOpen,
    startedAt: new Date(p.startedAt).toISOString(),
    endedAt: p.endedAt === null ? null : new Date(p.endedAt).toISOString(),
    outputBytes: p.outputBytes,
    droppedBytes: p.droppedBytes,
  };
}

/** Runs a proc.* call for process `pid`, mapping the agent's errors onto HTTP ones. */
export async function onProcess<T>(pid: number, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw fromProcessError(err, pid);
  }
}

/** Writes `b` to the process's stdin in chunks the protocol carries. */
export async function feedStdin(agent: GuestAgent, pid: number, b: Buffer, close = false): Promise<void> {
  for (let at = 0; at < b.length || (close && at === 0); at += PROC_STDIN_MAX_BYTES) {
    const piece = b.subarray(at, at + PROC_STDIN_MAX_BYTES);
    const last = at + PROC_STDIN_MAX_BYTES >= b.length;
    await onProcess(pid, agent.proc('proc.stdin', { pid, data: piece.toString('base64'), ...(close && last ? { close: true } : {}) }, 0));
    if (b.length === 0) break;
  }
}

/** NDJSON lines of a process's output from `offset`; the first read happens before the reply (its errors are HTTP errors). */
async function outputLines(agent: GuestAgent, pid: number, offset: number, follow: boolean, signal: AbortSignal, onBytes: () => void = () => undefined): Promise<AsyncGenerator<string>> {
  const read = (at: number, waitMs: number) => onProcess(pid, agent.proc('proc.read', { pid, offset: at, waitMs }, waitMs > 0 ? POLL_TIMEOUT_MS : undefined));
  const first = await read(offset, 0);
  return (async function* lines() {
    let r = first;
    for (;;) {
      if (r.dropped > 0) yield JSON.stringify({ type: 'dropped', bytes: r.dropped }) + '\n';
      if (r.chunks.length > 0) onBytes(); // output counts as activity (idle timeout, auto-pause)
      for (const c of r.chunks) yield JSON.stringify({ type: c.type, data: c.data, offset: c.offset }) + '\n';
      if (r.exit) {
        yield JSON.stringify({ type: 'exit', exitCode: r.exit.exitCode, signal: r.exit.signal }) + '\n';
        return;
      }
      if (signal.aborted || (!follow && r.nextOffset >= r.end)) return;
      try {
        r = await read(r.nextOffset, follow && r.nextOffset >= r.end ? POLL_MS : 0);
      } catch (err) {
        yield JSON.stringify({ type: 'error', error: fromProcessError(err, pid).toJSON() }) + '\n';
        return;
      }
    }
  })();
}

export function registerProcessRoutes(app: FastifyInstance, manager: SandboxManager, audit: AuditSink = NO_AUDIT): void {
  // An auto-paused sandbox is woken first; a user-paused one gets INVALID_STATE (agentFor).
  const agentOf = async (id: string) => {
    await manager.wake(id);
    return manager.agentFor(id, 'exec');
  };

  app.post<{ Params: Static<typeof SandboxIdParams>; Body: ProcessStartBody }>(
    '/v1/sandboxes/:id/processes',
    { schema: { summary: 'Start a background process (optionally on a PTY)', params: SandboxIdParams, body: ProcessStartBody, response: { 201: ProcessInfo } } },
    async (req, reply) => {
      const b = req.body;
      if (b.argv !== undefined && b.shell !== undefined) throw invalidArgument('give at most one of argv or shell', { field: 'argv' });
      if (b.argv === undefined && b.shell === undefined && !b.pty) throw invalidArgument('argv or shell is required (or pty, for a login shell)', { field: 'argv' });
      const agent = await agentOf(req.params.id);
      const rec = manager.get(req.params.id);
      const fields = {
        sandboxId: req.params.id,
        ...(b.argv ? { argv: b.argv } : {}),
        ...(b.shell !== undefined ? { shell: b.shell } : {}),
        ...(b.cwd ? { cwd: b.cwd } : {}),
        ...(b.user ? { user: b.user } : {}),
        ...(b.tag ? { tag: b.tag } : {}),
        envKeys: Object.keys(b.env ?? {}),
        pty: b.pty !== undefined,
      };
      let info: ProcInfo;
      try {
        info = await agent.proc('proc.start', {
          ...(b.argv ? { argv: b.argv } : {}),
          ...(b.shell !== undefined ? { shell: b.shell } : {}),
          env: { ...rec.spec.env, ...(b.env ?? {}) },
          // A template built from an image: its WORKDIR and USER are the defaults (docs/templates.md).
          ...(b.cwd || rec.spec.workdir ? { cwd: b.cwd || rec.spec.workdir } : {}),
          ...(b.user || rec.spec.user ? { user: b.user || rec.spec.user } : {}),
          ...(b.timeoutMs ? { timeoutMs: b.timeoutMs } : {}),
          ...(b.tag ? { tag: b.tag } : {}),
          stdin: b.stdin ?? false,
          ...(b.pty ? { pty: b.pty } : {}),
          ...(b.term ? { term: b.term } : {}),
        });
      } catch (err) {
        const e = fromGuestError(err);
        await audit.append(processStartRecord({ ...fields, pid: null, errorCode: e.code }));
        throw e;
      }
      await audit.append(processStartRecord({ ...fields, pid: info.pid }));
      return reply.code(201).send(processView(info));
    },
  );

  app.get<{ Params: Static<typeof SandboxIdParams> }>(
    '/v1/sandboxes/:id/processes',
    { schema: { summary: 'List background processes (running, and exited ones kept for a while)', params: SandboxIdParams } },
    async (req) => {
      const agent = await agentOf(req.params.id);
      const all: ProcessInfo[] = [];
      let offset: number | null = 0;
      while (offset !== null) {
        const page: { processes: ProcInfo[]; nextOffset: number | null } = await agent.proc('proc.list', { offset }).catch((err: unknown) => {
          throw fromGuestError(err);
        });
        all.push(...page.processes.map(processView));
        if (page.nextOffset !== null && page.nextOffset <= offset) break;
        offset = page.nextOffset;
      }
      return { processes: all };
    },
  );

  app.get<{ Params: ProcessParams }>(
    '/v1/sandboxes/:id/processes/:pid',
    { schema: { summary: 'One background process', params: ProcessParams, response: { 200: ProcessInfo } } },
    async (req) => processView(await onProcess(req.params.pid, (await agentOf(req.params.id)).proc('proc.get', { pid: req.params.pid }))),
  );

  app.get<{ Params: ProcessParams; Querystring: OutputQuery }>(
    '/v1/sandboxes/:id/processes/:pid/output',
    { schema: { summary: 'Output from a byte offset (NDJSON: dropped, stdout/stderr/pty, exit)', params: ProcessParams, querystring: OutputQuery } },
    async (req, reply) => {
      const abort = new AbortController();
      const agent = await agentOf(req.params.id);
      // A follower waits on the guest: the sandbox stays awake (no auto-pause) while it follows.
      const awake = req.query.follow ? manager.hold(req.params.id) : () => undefined;
      reply.raw.once('close', () => {
        abort.abort();
        awake();
      });
      let lines: AsyncGenerator<string>;
      try {
        lines = await outputLines(agent, req.params.pid, req.query.offset ?? 0, req.query.follow ?? false, abort.signal, () => manager.touch(req.params.id));
      } catch (err) {
        awake();
        throw err;
      }
      // Readable.from pulls the next line only when the response wants more.
      const body = Readable.from(lines, { objectMode: false, highWaterMark: 64 * 1024 });
      return reply.type('application/x-ndjson').header('cache-control', 'no-store').send(body);
    },
  );

  app.post<{ Params: ProcessParams }>(
    '/v1/sandboxes/:id/processes/:pid/stdin',
    { schema: { summary: 'Write to a process\'s stdin: application/octet-stream, or JSON {data: base64}', params: ProcessParams } },
    async (req) => {
      const agent = await agentOf(req.params.id);
      const pid = req.params.pid;
      let bytes = 0;
      const body = req.body as Readable | Static<typeof StdinJsonBody> | undefined;
      if (body && typeof (body as Readable)[Symbol.asyncIterator] === 'function') {
        for await (const chunk of body as Readable) {
          const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
          bytes += b.length;
          await feedStdin(agent, pid, b);
        }
      } else {
        const data = (body as { data?: unknown } | undefined)?.data;
        if (typeof data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) throw invalidArgument('stdin needs an application/octet-stream body or JSON {"data": "<base64>"}', { field: 'data' });
        const b = Buffer.from(data, 'base64');
        bytes = b.length;
        await feedStdin(agent, pid, b);
      }
      return { bytes };
    },
  );

  app.post<{ Params: ProcessParams }>(
    '/v1/sandboxes/:id/processes/:pid/stdin/close',
    { schema: { summary: 'Close a process\'s stdin (EOF)', params: ProcessParams } },
    async (req) => {
      await feedStdin(await agentOf(req.params.id), req.params.pid, Buffer.alloc(0), true);
      return { ok: true };
    },
  );

  const signal = async (id: string, pid: number, sig: string) => {
    try {
      await onProcess(pid, (await agentOf(id)).proc('proc.signal', { pid, signal: sig }));
    } catch (err) {
      await audit.append(processSignalRecord(id, pid, sig, (err as { code?: string }).code ?? 'INTERNAL'));
      throw err;
    }
    await audit.append(processSignalRecord(id, pid, sig));
    return { ok: true };
  };

  app.post<{ Params: ProcessParams; Body: Static<typeof ProcessSignalBody> }>(
    '/v1/sandboxes/:id/processes/:pid/signal',
    { schema: { summary: 'Signal a process\'s process group', params: ProcessParams, body: ProcessSignalBody } },
    async (req) => signal(req.params.id, req.params.pid, req.body.signal),
  );

  app.delete<{ Params: ProcessParams }>(
    '/v1/sandboxes/:id/processes/:pid',
    { schema: { summary: 'Kill a process (SIGKILL to its process group)', params: ProcessParams } },
    async (req) => signal(req.params.id, req.params.pid, 'SIGKILL'),
  );

  app.get<{ Params: ProcessParams }>(
    '/v1/sandboxes/:id/processes/:pid/wait',
    { schema: { summary: 'Wait for a process to exit', params: ProcessParams, response: { 200: ProcessInfo } } },
    async (req) => {
      const agent = await agentOf(req.params.id);
      let gone = false;
      req.raw.once('close', () => (gone = true));
      const awake = manager.hold(req.params.id); // the waiter waits on the guest: no auto-pause meanwhile
      try {
        for (;;) {
          const info = await onProcess(req.params.pid, agent.proc('proc.wait', { pid: req.params.pid, timeoutMs: POLL_MS }, POLL_TIMEOUT_MS));
          if (info.state === 'exited' || gone) return processView(info);
        }
      } finally {
        awake();
      }
    },
  );

  app.post<{ Params: ProcessParams; Body: Static<typeof ResizeBody> }>(
    '/v1/sandboxes/:id/processes/:pid/resize',
    { schema: { summary: 'Resize a PTY process\'s terminal', params: ProcessParams, body: ResizeBody } },
    async (req) => {
      await onProcess(req.params.pid, (await agentOf(req.params.id)).proc('proc.resize', { pid: req.params.pid, ...req.body }));
      return { ok: true };
    },
  );
}
