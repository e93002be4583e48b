/**
 * Terminals: a WebSocket attached to a PTY background process.
 *   GET /v1/sandboxes/:id/processes/:pid/pty   attach to an existing PTY process
 *   GET /v1/sandboxes/:id/pty?cols&rows&term&user&cwd&cmd   start one (default: the user's login shell) and attach
 * Binary frames both ways are terminal bytes (Ctrl-C is byte 0x03). Text frames are JSON
 * control: client → server {"type":"resize","cols":..,"rows":..}; server → client
 * {"type":"exit","exitCode":..,"signal":..} and then the socket closes, or {"type":"error",..}.
 * Closing the socket never kills the process (reattach, or DELETE it).
 * The next output read from the guest is asked for only once the previous frame was written to
 * the client's socket, so a client that never reads holds kilnd to one read (32 KiB); the
 * process is not held back (its buffer in the guest overwrites).
 * Each session is audited: start, then end with bytes in and out; the input itself only with
 * KILN_AUDIT_PTY_INPUT=1 (up to 64 KiB).
 * An auto-paused sandbox is woken before the upgrade; an attached terminal keeps it awake, and
 * its bytes (both ways) count as activity.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { randomBytes } from 'node:crypto';
import { PTY_LIMITS, type ProcReadResult } from '@kiln/protocol';
import { invalidArgument, KilnError } from '../../errors.js';
import type { SandboxManager } from '../../sandbox/manager.js';
import { ProcessParams, PtyQuery, SandboxIdParams } from '@kiln/contract';
import { fromGuestError, fromProcessError } from '../guest-errors.js';
import { NO_AUDIT, type AuditSink } from '../../audit/guest-records.js';
import { processStartRecord, terminalRecord } from '../../audit/process-records.js';
import { feedStdin, onProcess } from './processes.js';

const POLL_MS = 20_000;
const MAX_RECORDED_INPUT = 64 * 1024;

export interface PtyOptions {
  /** Record the keystrokes of terminal sessions in the audit log (KILN_AUDIT_PTY_INPUT=1). */
  recordInput?: boolean;
}

/** Sends `data` and resolves once it was written to the client's socket (or the socket is gone). */
function send(ws: WebSocket, data: Buffer | string): Promise<void> {
  if (ws.readyState !== ws.OPEN) return Promise.resolve();
  return new Promise((resolve) => ws.send(data, () => resolve()));
}

function attach(ws: WebSocket, req: FastifyRequest, manager: SandboxManager, sandboxId: string, pid: number, audit: AuditSink, opts: PtyOptions): void {
  const agent = manager.agentFor(sandboxId, 'exec');
  // An attached terminal keeps the sandbox awake (its reads wait in the guest); bytes either way are activity.
  const awake = manager.hold(sandboxId);
  const session = `pty-${randomBytes(6).toString('hex')}`;
  const started = Date.now();
  let bytesIn = 0;
  let bytesOut = 0;
  const input: Buffer[] = [];
  let inputLen = 0;
  let exit: ProcReadResult['exit'] = null;
  let closed = false;
  void audit.append(terminalRecord({ sandboxId, pid, event: 'start', session })).catch((err: unknown) => req.log.warn({ err }, 'terminal audit record failed'));

  // Guest → client.
  void (async () => {
    let offset: number | null = null;
    try {
      const info = await onProcess(pid, agent.proc('proc.get', { pid }));
      offset = info.droppedBytes; // the screen so far, as far as the buffer still holds it
      for (;;) {
        if (closed) return;
        const r: ProcReadResult = await onProcess(pid, agent.proc('proc.read', { pid, offset, waitMs: POLL_MS }, POLL_MS + 15_000));
        if (r.chunks.length > 0) manager.touch(sandboxId);
        for (const c of r.chunks) {
          const b = Buffer.from(c.data, 'base64');
          bytesOut += b.length;
          await send(ws, b);
        }
        offset = r.nextOffset;
        if (r.exit) {
          exit = r.exit;
          await send(ws, JSON.stringify({ type: 'exit', exitCode: r.exit.exitCode, signal: r.exit.signal }));
          ws.close(1000, 'process exited');
          return;
        }
      }
    } catch (err) {
      if (closed) return;
      await send(ws, JSON.stringify({ type: 'error', error: fromProcessError(err, pid).toJSON() }));
      ws.close(1011, 'guest error');
    }
  })();

  // Client → guest, in order.
  let chain: Promise<void> = Promise.resolve();
  const fail = (err: unknown) => {
    void send(ws, JSON.stringify({ type: 'error', error: fromProcessError(err, pid).toJSON() }));
  };
  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
    const b = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    manager.touch(sandboxId);
    if (isBinary) {
      bytesIn += b.length;
      if (opts.recordInput && inputLen < MAX_RECORDED_INPUT) {
        const keep = b.subarray(0, MAX_RECORDED_INPUT - inputLen);
        input.push(keep);
        inputLen += keep.length;
      }
      chain = chain.then(() => feedStdin(agent, pid, b)).catch(fail);
      return;
    }
    let msg: { type?: unknown; cols?: unknown; rows?: unknown };
    try {
      msg = JSON.parse(b.toString('utf8')) as typeof msg;
    } catch {
      return fail(invalidArgument('control frames are JSON', { field: 'frame' }));
    }
    if (msg.type !== 'resize') return fail(invalidArgument(`unknown control frame type ${JSON.stringify(msg.type)}`, { field: 'type' }));
    const { cols, rows } = msg;
    if (!Number.isInteger(cols) || !Number.isInteger(rows) || (cols as number) < 1 || (rows as number) < 1 || (cols as number) > PTY_LIMITS.maxCols || (rows as number) > PTY_LIMITS.maxRows) {
      return fail(invalidArgument(`resize needs integer cols 1..${PTY_LIMITS.maxCols} and rows 1..${PTY_LIMITS.maxRows}`, { field: 'cols' }));
    }
    chain = chain.then(async () => void (await agent.proc('proc.resize', { pid, cols: cols as number, rows: rows as number }))).catch(fail);
  });

  ws.once('close', () => {
    closed = true;
    awake();
    void audit
      .append(
        terminalRecord({
          sandboxId,
          pid,
          event: 'end',
          session,
          bytesIn,
          bytesOut,
          durationMs: Date.now() - started,
          exitCode: exit?.exitCode ?? null,
          signal: exit?.signal ?? null,
          ...(opts.recordInput ? { input: Buffer.concat(input).toString('base64'), inputTruncated: bytesIn > inputLen } : {}),
        }),
      )
      .catch((err: unknown) => req.log.warn({ err }, 'terminal audit record failed'));
  });
}

/** A plain HTTP GET on a terminal route (no upgrade): 426, named. */
async function upgradeRequired(): Promise<never> {
  throw new KilnError('UPGRADE_REQUIRED', 'this route is a WebSocket: send the request with Connection: Upgrade, Upgrade: websocket', { status: 426 });
}

export function registerPtyRoutes(app: FastifyInstance, manager: SandboxManager, audit: AuditSink = NO_AUDIT, opts: PtyOptions = {}): void {
  app.route<{ Params: ProcessParams }>({
    method: 'GET',
    url: '/v1/sandboxes/:id/processes/:pid/pty',
    // handler + wsHandler (not `websocket: true`): the route stays in /openapi.json.
    schema: { summary: 'Attach to a PTY process (WebSocket upgrade; binary frames = terminal bytes, text frames = JSON resize/exit/error)', params: ProcessParams },
    // Before the upgrade: an unknown sandbox or pid, or a process without a terminal, is an HTTP error.
    preHandler: async (req) => {
      await manager.wake(req.params.id);
      const info = await onProcess(req.params.pid, manager.agentFor(req.params.id, 'exec').proc('proc.get', { pid: req.params.pid }));
      if (!info.pty) throw new KilnError('PROCESS_NOT_PTY', `process ${info.pid} has no terminal`, { status: 400 });
    },
    handler: upgradeRequired,
    wsHandler: (ws, req) => attach(ws, req, manager, req.params.id, req.params.pid, audit, opts),
  });

  app.route<{ Params: { id: string }; Querystring: PtyQuery }>({
    method: 'GET',
    url: '/v1/sandboxes/:id/pty',
    schema: { summary: 'Start a PTY process (default: the user\'s login shell) and attach (WebSocket upgrade, as …/processes/{pid}/pty)', params: SandboxIdParams, querystring: PtyQuery },
    preHandler: async (req) => {
      if (!req.ws) return upgradeRequired(); // nothing is started for a request that cannot attach
      const q = req.query;
      await manager.wake(req.params.id);
      const agent = manager.agentFor(req.params.id, 'exec');
      const rec = manager.get(req.params.id);
      const fields = { sandboxId: req.params.id, ...(q.cmd ? { shell: q.cmd } : {}), ...(q.cwd ? { cwd: q.cwd } : {}), ...(q.user ? { user: q.user } : {}), envKeys: [], pty: true };
      try {
        const info = await agent.proc('proc.start', {
          ...(q.cmd ? { shell: q.cmd } : {}),
          env: { ...rec.spec.env },
          ...(q.cwd ? { cwd: q.cwd } : {}),
          ...(q.user ? { user: q.user } : {}),
          pty: { cols: q.cols ?? 80, rows: q.rows ?? 24 },
          ...(q.term ? { term: q.term } : {}),
        });
        (req as FastifyRequest & { ptyPid?: number }).ptyPid = info.pid;
        await audit.append(processStartRecord({ ...fields, pid: info.pid }));
      } catch (err) {
        const e = fromGuestError(err);
        await audit.append(processStartRecord({ ...fields, pid: null, errorCode: e.code }));
        throw e;
      }
    },
    handler: upgradeRequired,
    wsHandler: (ws, req) => {
      const pid = (req as FastifyRequest & { ptyPid?: number }).ptyPid as number;
      attach(ws, req, manager, req.params.id, pid, audit, opts);
    },
  });
}
