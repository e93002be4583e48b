/**
 * process.Process (envd's process.proto) on kiln's background processes (the agent's proc.*
 * ops): a process outlives the stream that started it, any client can Connect to it by pid
 * or tag, and its output comes from the guest's ring buffer.
 */
import type { ProcInfo } from '@kiln/protocol';
import { PTY_LIMITS } from '@kiln/protocol';
import { feedStdin } from '../../api/routes/processes.js';
import { ConnectError } from './connect-codec.js';
import { int, obj, str, type EnvdCall, type ServiceMethods } from './call.js';
import { pumpProcess } from './process-events.js';
import { guestError, procError } from './proc-errors.js';
import { resolvePath } from './user.js';
import { WATCHER_TAG_PREFIX } from './watch-service.js';
import { processSignalRecord, processStartRecord } from '../../audit/process-records.js';

/** The longest process lifetime the agent takes (7 days). */
const MAX_TIMEOUT_MS = 7 * 24 * 3_600_000;

const SIGNALS: Record<string, string> = { SIGNAL_SIGKILL: 'SIGKILL', SIGNAL_SIGTERM: 'SIGTERM', '9': 'SIGKILL', '15': 'SIGTERM' };

async function listAll(call: EnvdCall): Promise<ProcInfo[]> {
  const all: ProcInfo[] = [];
  let offset: number | null = 0;
  while (offset !== null) {
    const page: { processes: ProcInfo[]; nextOffset: number | null } = await call.agent.proc('proc.list', { offset }).catch((err: unknown) => {
      throw guestError(err);
    });
    all.push(...page.processes);
    if (page.nextOffset !== null && page.nextOffset <= offset) break;
    offset = page.nextOffset;
  }
  return all;
}

/** The pid a ProcessSelector (`{pid}` or `{tag}`) names. */
async function selectPid(call: EnvdCall, msg: Record<string, unknown>): Promise<number> {
  const sel = obj(msg, 'process');
  const pid = int(sel, 'pid');
  if (pid !== undefined && pid > 0) return pid;
  const tag = str(sel, 'tag');
  if (tag === '') throw new ConnectError('invalid_argument', 'process selector needs a pid or a tag');
  const found = (await listAll(call)).find((p) => p.tag === tag && p.state === 'running');
  if (!found) throw new ConnectError('not_found', `process with tag ${tag} not found`);
  return found.pid;
}

function ptySize(msg: Record<string, unknown>): { cols: number; rows: number } | undefined {
  if (msg.pty === undefined || msg.pty === null) return undefined;
  const size = obj(obj(msg, 'pty'), 'size');
  const cols = int(size, 'cols') ?? 80;
  const rows = int(size, 'rows') ?? 24;
  if (cols < 1 || rows < 1 || cols > PTY_LIMITS.maxCols || rows > PTY_LIMITS.maxRows) {
    throw new ConnectError('invalid_argument', `pty size must be 1..${PTY_LIMITS.maxCols} cols and 1..${PTY_LIMITS.maxRows} rows`);
  }
  return { cols, rows };
}

function stringMap(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (v && typeof v === 'object') for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (typeof x === 'string') out[k] = x;
  return out;
}

export const processMethods: ServiceMethods = {
  stream: {
    Start: async (call, msg, out) => {
      const cfg = obj(msg, 'process');
      const cmd = str(cfg, 'cmd');
      if (cmd === '') throw new ConnectError('invalid_argument', 'process.cmd is required');
      const args = Array.isArray(cfg.args) ? cfg.args.filter((a): a is string => typeof a === 'string') : [];
      const envs = stringMap(cfg.envs);
      const term = envs.TERM !== undefined && /^[A-Za-z0-9_.+-]{1,64}$/.test(envs.TERM) ? envs.TERM : 'xterm-256color';
      const pty = ptySize(msg);
      const tag = str(msg, 'tag');
      // envd's default is an open stdin; the SDK sends stdin:false for commands.run unless asked.
      const stdin = typeof msg.stdin === 'boolean' ? msg.stdin : true;
      // As envd: the call's deadline (Connect-Timeout-Ms, the SDK's timeoutMs, default 60 s;
      // 0 sends none) is the process's lifetime: it is killed when the deadline passes.
      const deadline = Number(call.headers['connect-timeout-ms']);
      const timeoutMs = Number.isInteger(deadline) && deadline > 0 ? Math.min(deadline, MAX_TIMEOUT_MS) : undefined;
      const cwd = resolvePath(typeof cfg.cwd === 'string' ? cfg.cwd : undefined, call.user);
      const fields = { sandboxId: call.sandboxId, argv: [cmd, ...args], cwd, user: call.user, ...(tag ? { tag } : {}), envKeys: Object.keys(envs), pty: pty !== undefined };
      let info: ProcInfo;
      try {
        info = await call.agent.proc('proc.start', {
          argv: [cmd, ...args],
          ...(timeoutMs ? { timeoutMs } : {}),
          env: { ...call.env, ...envs },
          cwd,
          user: call.user,
          ...(tag ? { tag } : {}),
          stdin: pty ? true : stdin,
          ...(pty ? { pty, term } : {}),
        });
      } catch (err) {
        const e = guestError(err);
        await call.audit.append(processStartRecord({ ...fields, pid: null, errorCode: e.code }));
        throw e;
      }
      await call.audit.append(processStartRecord({ ...fields, pid: info.pid }));
      await out.send({ event: { start: { pid: info.pid } } });
      await pumpProcess(call.agent, info.pid, 0, out);
    },

    Connect: async (call, msg, out) => {
      const pid = await selectPid(call, msg);
      let info: ProcInfo;
      try {
        info = await call.agent.proc('proc.get', { pid });
      } catch (err) {
        throw procError(err, pid);
      }
      await out.send({ event: { start: { pid } } });
      // From the oldest output the guest still holds: a client that connects late still sees it.
      await pumpProcess(call.agent, pid, info.droppedBytes, out);
    },
  },

  unary: {
    List: async (call) => ({
      processes: (await listAll(call))
        .filter((p) => p.state === 'running' && !p.tag?.startsWith(WATCHER_TAG_PREFIX))
        .map((p) => ({ config: { cmd: p.argv[0] ?? '', args: p.argv.slice(1), envs: {}, cwd: p.cwd }, pid: p.pid, ...(p.tag ? { tag: p.tag } : {}) })),
    }),

    SendInput: async (call, msg) => {
      const pid = await selectPid(call, msg);
      const input = obj(msg, 'input');
      const data = typeof input.stdin === 'string' ? input.stdin : typeof input.pty === 'string' ? input.pty : '';
      await feedStdin(call.agent, pid, Buffer.from(data, 'base64')).catch((err: unknown) => {
        throw procError(err, pid);
      });
      return {};
    },

    SendSignal: async (call, msg) => {
      const pid = await selectPid(call, msg);
      const raw = msg.signal;
      const signal = SIGNALS[String(raw)];
      if (!signal) throw new ConnectError('invalid_argument', `unsupported signal ${JSON.stringify(raw)} (SIGNAL_SIGKILL or SIGNAL_SIGTERM)`);
      try {
        await call.agent.proc('proc.signal', { pid, signal });
        await call.audit.append(processSignalRecord(call.sandboxId, pid, signal));
      } catch (err) {
        await call.audit.append(processSignalRecord(call.sandboxId, pid, signal, (err as { code?: string }).code ?? 'INTERNAL')).catch(() => undefined);
        // A process that already exited is gone, as envd sees it.
        if ((err as { code?: unknown })?.code === 'NOT_RUNNING') throw new ConnectError('not_found', `process with pid ${pid} not found`);
        throw procError(err, pid);
      }
      return {};
    },

    CloseStdin: async (call, msg) => {
      const pid = await selectPid(call, msg);
      await feedStdin(call.agent, pid, Buffer.alloc(0), true).catch((err: unknown) => {
        throw procError(err, pid);
      });
      return {};
    },

    Update: async (call, msg) => {
      const pid = await selectPid(call, msg);
      const size = ptySize(msg);
      if (!size) return {};
      try {
        await call.agent.proc('proc.resize', { pid, ...size });
      } catch (err) {
        throw procError(err, pid);
      }
      return {};
    },

    StreamInput: async () => {
      throw new ConnectError('unimplemented', 'process.Process/StreamInput (client streaming) is not supported by kiln over HTTP/1.1: use SendInput');
    },
  },
};
