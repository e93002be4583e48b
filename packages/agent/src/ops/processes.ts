// proc.* ops: background processes that outlive the host session that started them.

import { constants } from 'node:os';
import { AgentError, PROC_READ_MAX_BYTES, errnoToCode, type ProcInfo, type ProcReadResult } from '@kiln/protocol';
import type { OpHandler } from './context.js';
import { infoOf, ProcessTable, type Proc } from './process-table.js';
import { startProcess } from './process-spawn.js';

/** One table for the agent's lifetime (every host session sees the same processes). */
export const processes = new ProcessTable();

/** Most chunks in one read reply (with the bytes cap, it keeps the reply header under 64 KiB). */
const MAX_READ_CHUNKS = 256;
/** Most bytes of ProcInfo per list page. */
const LIST_PAGE_CHARS = 40 * 1024;
const DEFAULT_WAIT_MS = 25_000;

export const procStart: OpHandler<'proc.start'> = async (ctx, args) => infoOf(await startProcess(processes, args, ctx.session.config.ptyHelperPath));

export const procGet: OpHandler<'proc.get'> = async (_ctx, { pid }) => infoOf(processes.get(pid));

export const procList: OpHandler<'proc.list'> = async (_ctx, { offset = 0 }) => {
  const all = processes.list();
  const page: ProcInfo[] = [];
  let chars = 0;
  let i = offset;
  for (; i < all.length; i++) {
    const info = infoOf(all[i] as Proc);
    chars += JSON.stringify(info).length;
    if (page.length > 0 && chars > LIST_PAGE_CHARS) break;
    page.push(info);
  }
  return { processes: page, nextOffset: i < all.length ? i : null };
};

/** Resolves on the process's next output or exit, after `ms`, or when the request is aborted. */
function nextNews(p: Proc, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      p.events.off('output', done);
      p.events.off('exit', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    p.events.once('output', done);
    p.events.once('exit', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

export const procRead: OpHandler<'proc.read'> = async (ctx, { pid, offset, maxBytes = PROC_READ_MAX_BYTES, waitMs = 0 }) => {
  const p = processes.get(pid);
  if (offset > p.ring.end) throw new AgentError('INVALID_ARGUMENT', `offset ${offset} is past the end of the output (${p.ring.end})`);
  if (offset === p.ring.end && !p.exited && waitMs > 0) await nextNews(p, waitMs, ctx.signal);
  const r = p.ring.read(offset, Math.min(maxBytes, PROC_READ_MAX_BYTES), MAX_READ_CHUNKS);
  const atEnd = r.nextOffset === p.ring.end;
  const result: ProcReadResult = {
    chunks: r.chunks.map((c) => ({ type: c.type, offset: c.offset, data: c.data.toString('base64') })),
    dropped: r.dropped,
    nextOffset: r.nextOffset,
    end: p.ring.end,
    exit: p.exited && atEnd ? { exitCode: p.exitCode, signal: p.signal } : null,
  };
  return result;
};

export const procStdin: OpHandler<'proc.stdin'> = async (_ctx, { pid, data, close = false }) => {
  const p = processes.get(pid);
  const stdin = p.stdin;
  if (p.exited) throw new AgentError('NOT_RUNNING', `process ${pid} has exited`);
  if (!stdin || stdin.writableEnded) throw new AgentError('NOT_RUNNING', `process ${pid} has no open stdin`);
  const b = Buffer.from(data, 'base64');
  if (b.length > 0) {
    // Resolves once the pipe took the bytes: a process that does not read holds the caller.
    await new Promise<void>((resolve) => stdin.write(b, () => resolve()));
  }
  if (close) {
    if (p.pty) p.stdin = null; // a PTY's input just stops: closing the master would hang up the terminal
    else stdin.end();
  }
  return {};
};

export const procSignal: OpHandler<'proc.signal'> = async (_ctx, { pid, signal }) => {
  if (!(signal in constants.signals)) throw new AgentError('INVALID_ARGUMENT', `unknown signal ${signal}`);
  const p = processes.get(pid);
  if (p.exited) throw new AgentError('NOT_RUNNING', `process ${pid} has exited`);
  try {
    process.kill(-p.pid, signal as NodeJS.Signals);
  } catch (err) {
    throw new AgentError(errnoToCode(err), `signalling process ${pid}: ${(err as Error).message}`);
  }
  return {};
};

export const procWait: OpHandler<'proc.wait'> = async (ctx, { pid, timeoutMs = DEFAULT_WAIT_MS }) => {
  const p = processes.get(pid);
  if (!p.exited && timeoutMs > 0) {
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        p.events.off('exit', done);
        ctx.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      p.events.once('exit', done);
      ctx.signal.addEventListener('abort', done, { once: true });
    });
  }
  return infoOf(p);
};

export const procResize: OpHandler<'proc.resize'> = async (_ctx, { pid, cols, rows }) => {
  const p = processes.get(pid);
  if (!p.pty) throw new AgentError('INVALID_ARGUMENT', `process ${pid} has no terminal`);
  if (p.exited || !p.control) throw new AgentError('NOT_RUNNING', `process ${pid} has exited`);
  p.control.write(`${rows} ${cols}\n`);
  return {};
};
