/**
 * WatchDir and the watcher calls (CreateWatcher / GetWatcherEvents / RemoveWatcher). The
 * guest's own inotify does the watching: a small script on the guest's node (fs.watch, which
 * is inotify on Linux, recursive included) runs as a kiln background process under the calling
 * user and prints one JSON line per event; kilnd reads its output like any process's. Event
 * types follow inotify: a `change` is WRITE; a `rename` is CREATE when the name exists
 * afterwards and REMOVE when it does not (fs.watch does not tell a move from a removal).
 */
import { randomBytes } from 'node:crypto';
import type { ProcReadResult } from '@kiln/protocol';
import type { GuestAgent } from '../../sandbox/guest-agent.js';
import { ConnectError } from './connect-codec.js';
import { str, type EnvdCall, type ServiceMethods } from './call.js';
import { guestError } from './proc-errors.js';
import { resolvePath } from './user.js';

/** Tag of the guest processes that watch for WatchDir/CreateWatcher (hidden from process.Process/List). */
export const WATCHER_TAG_PREFIX = 'kiln-e2b-watch-';

/** The guest's node binary (the agent's own). */
export const GUEST_NODE = '/opt/kiln/bin/node';
const POLL_MS = 20_000;

const WATCHER = `
const fs = require('fs'), path = require('path');
const dir = process.argv[1], recursive = process.argv[2] === '1';
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
let st;
try { st = fs.statSync(dir); } catch (e) { console.error(dir + ': ' + (e.code === 'ENOENT' ? 'No such file or directory' : e.message)); process.exit(2); }
if (!st.isDirectory()) { console.error(dir + ': Not a directory'); process.exit(3); }
fs.watch(dir, { recursive }, (ev, name) => {
  if (!name) return;
  const t = ev === 'change' ? 2 : fs.existsSync(path.join(dir, name)) ? 1 : 3;
  out({ t, name });
}).on('error', (e) => { console.error(e.message); process.exit(1); });
out({ ready: true });
`;

const EVENT_TYPES: Record<number, string> = { 1: 'EVENT_TYPE_CREATE', 2: 'EVENT_TYPE_WRITE', 3: 'EVENT_TYPE_REMOVE', 4: 'EVENT_TYPE_RENAME', 5: 'EVENT_TYPE_CHMOD' };

type FsEvent = { name: string; type: string };

interface Watcher {
  pid: number;
  offset: number;
  /** Bytes of an incomplete last line. */
  partial: string;
}

/** Turns watcher output into FilesystemEvents; `ready` is set once the watch is in place. */
function parseOutput(w: Watcher, r: ProcReadResult): { events: FsEvent[]; ready: boolean; stderr: string } {
  let text = w.partial;
  let stderr = '';
  for (const c of r.chunks) {
    const s = Buffer.from(c.data, 'base64').toString('utf8');
    if (c.type === 'stderr') stderr += s;
    else text += s;
  }
  w.offset = r.nextOffset;
  const lines = text.split('\n');
  w.partial = lines.pop() ?? '';
  const events: FsEvent[] = [];
  let ready = false;
  for (const line of lines) {
    if (line === '') continue;
    try {
      const o = JSON.parse(line) as { ready?: boolean; t?: number; name?: string };
      if (o.ready) ready = true;
      else if (typeof o.name === 'string' && o.t && EVENT_TYPES[o.t]) events.push({ name: o.name, type: EVENT_TYPES[o.t] as string });
    } catch {
      // not one of ours
    }
  }
  return { events, ready, stderr };
}

async function read(agent: GuestAgent, w: Watcher, waitMs: number): Promise<ProcReadResult> {
  try {
    return await agent.proc('proc.read', { pid: w.pid, offset: w.offset, waitMs }, waitMs + 15_000);
  } catch (err) {
    throw guestError(err);
  }
}

function exitError(dir: string, stderr: string): ConnectError {
  if (/No such file/.test(stderr)) return new ConnectError('not_found', `directory ${dir} not found`);
  if (/Not a directory/.test(stderr)) return new ConnectError('invalid_argument', `path ${dir} is not a directory`);
  return new ConnectError('internal', `watching ${dir} failed: ${stderr.trim() || 'watcher exited'}`);
}

/** Starts the guest watcher and waits until its watch is in place. */
async function startWatcher(call: EnvdCall, msg: Record<string, unknown>): Promise<Watcher & { early: FsEvent[] }> {
  const dir = resolvePath(str(msg, 'path') || undefined, call.user);
  const recursive = msg.recursive === true;
  let pid: number;
  try {
    pid = (await call.agent.proc('proc.start', { argv: [GUEST_NODE, '-e', WATCHER, dir, recursive ? '1' : '0'], user: call.user, cwd: '/', tag: `${WATCHER_TAG_PREFIX}${randomBytes(4).toString('hex')}` })).pid;
  } catch (err) {
    throw guestError(err);
  }
  const w: Watcher = { pid, offset: 0, partial: '' };
  let stderr = '';
  for (;;) {
    const r = await read(call.agent, w, POLL_MS);
    const p = parseOutput(w, r);
    stderr += p.stderr;
    if (p.ready) return { ...w, early: p.events };
    if (r.exit) throw exitError(dir, stderr);
  }
}

function stopWatcher(agent: GuestAgent, pid: number): void {
  void agent.proc('proc.signal', { pid, signal: 'SIGKILL' }).catch(() => undefined);
}

/** Watchers one sandbox may keep (each is a process in the guest until RemoveWatcher). */
const MAX_WATCHERS_PER_SANDBOX = 64;

/** Watchers made by CreateWatcher, by id (they live until RemoveWatcher or the sandbox goes). */
const watchers = new Map<string, Watcher & { sandboxId: string; early: FsEvent[] }>();

export const watchMethods: ServiceMethods = {
  stream: {
    WatchDir: async (call, msg, out) => {
      const w = await startWatcher(call, msg);
      const stop = () => stopWatcher(call.agent, w.pid);
      out.signal.addEventListener('abort', stop, { once: true });
      try {
        await out.send({ start: {} });
        for (const e of w.early) await out.send({ filesystem: e });
        for (;;) {
          if (!out.open) return;
          const r = await read(call.agent, w, POLL_MS);
          const p = parseOutput(w, r);
          for (const e of p.events) await out.send({ filesystem: e });
          if (r.exit) throw exitError(str(msg, 'path'), p.stderr);
          if (p.events.length === 0) await out.send({ keepalive: {} });
        }
      } finally {
        stop();
      }
    },
  },
  unary: {
    CreateWatcher: async (call, msg) => {
      const mine = [...watchers.values()].filter((w) => w.sandboxId === call.sandboxId).length;
      if (mine >= MAX_WATCHERS_PER_SANDBOX) throw new ConnectError('resource_exhausted', `at most ${MAX_WATCHERS_PER_SANDBOX} watchers per sandbox: remove one first (RemoveWatcher)`);
      const w = await startWatcher(call, msg);
      const id = randomBytes(8).toString('hex');
      watchers.set(id, { pid: w.pid, offset: w.offset, partial: w.partial, sandboxId: call.sandboxId, early: w.early });
      return { watcherId: id };
    },
    GetWatcherEvents: async (call, msg) => {
      const w = watchers.get(str(msg, 'watcherId'));
      if (!w || w.sandboxId !== call.sandboxId) throw new ConnectError('not_found', `watcher ${str(msg, 'watcherId')} not found`);
      const r = await read(call.agent, w, 0);
      const events = [...w.early, ...parseOutput(w, r).events];
      w.early = [];
      return { events };
    },
    RemoveWatcher: async (call, msg) => {
      const id = str(msg, 'watcherId');
      const w = watchers.get(id);
      if (!w || w.sandboxId !== call.sandboxId) throw new ConnectError('not_found', `watcher ${id} not found`);
      watchers.delete(id);
      stopWatcher(call.agent, w.pid);
      return {};
    },
  },
};
