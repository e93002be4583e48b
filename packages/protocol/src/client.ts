// Host-side client of kiln-agent, used by the daemon. Works on any Duplex (a unix socket
// to QEMU's chardev in production, a socketpair or PassThrough pair in tests).

import { createHash, randomUUID } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { RpcChannel, type ChannelOptions } from './channel.js';
import { AgentError } from './errors.js';
import { StreamReceiver, StreamSender } from './flow.js';
import { PROTOCOL_VERSION } from './frame.js';
import type {
  DirEntry,
  DockerReadyResult,
  ExecArgs,
  ExecResult,
  FileStatResult,
  FileTransferResult,
  HealthResult,
  HelloResult,
  OpArgs,
  OpName,
  OpResult,
  StreamName,
  SysConfigureArgs,
  SysNetworkArgs,
  SysNetworkResult,
} from './messages.js';

export type AgentClientOptions = ChannelOptions;

export interface ConnectOptions extends AgentClientOptions {
  /** Give up (and reject with AgentError TIMEOUT) after this long. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** How often `hello` is re-sent until one is answered. Default 500 ms. */
  helloIntervalMs?: number;
  /** Called once the socket is open, before the first hello is answered. */
  onSocketOpen?: () => void;
}

export interface ExecHandlers {
  /** Called for each stdout chunk as it arrives; a returned promise delays the ack (backpressure). */
  onStdout?(b: Buffer): void | Promise<void>;
  onStderr?(b: Buffer): void | Promise<void>;
}

export interface ExecHandle {
  /** The request id; also the `execId` of `exec.signal`. */
  readonly id: number;
  /** Resolves once `b` is sent within the flow-control window. Data written after the exec ended is dropped. */
  writeStdin(b: Buffer): Promise<void>;
  endStdin(): void;
  /** Sends a signal ("SIGTERM", "SIGKILL", …) to the command's process group. */
  signal(sig: string): Promise<void>;
  /** Never causes an unhandled rejection if ignored. */
  readonly result: Promise<ExecResult>;
}

export interface TcpHandle {
  readonly id: number;
  /** Resolves once `b` is within the flow-control window (backpressure from the guest socket). */
  write(b: Buffer): Promise<void>;
  /** Half-closes host → guest. */
  end(): void;
  /** Aborts the connection (the agent destroys its socket). */
  close(): void;
  /** Settles when the connection is closed both ways (CONNECTION_REFUSED when nothing listens). */
  readonly result: Promise<{ bytesIn: number; bytesOut: number }>;
}

export interface WriteFileOptions {
  /** Permission bits, default 0o644. */
  mode?: number;
  /** Create missing parent directories; default false. */
  mkdirs?: boolean;
}

const DOCKER_READY_MARGIN_MS = 5_000;
const EXEC_TIMEOUT_MARGIN_MS = 10_000;
const MAX_LIST_ENTRIES = 1_000_000;

/** Keeps a promise handed to the caller from ever being an unhandled rejection. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

export class AgentClient extends RpcChannel {
  /** Set once a `hello` succeeded (always set on clients returned by `connect`). */
  agentInfo: HelloResult | undefined;
  /** Sent in every hello: a new id tells the agent that a new host session has started. */
  readonly sessionId = randomUUID();

  constructor(stream: import('node:stream').Duplex, opts: AgentClientOptions = {}) {
    super(stream, opts);
  }

  /**
   * Connects to QEMU's chardev socket and handshakes: `hello` is re-sent (new id) every
   * `helloIntervalMs` until one is answered, because the guest agent may open its port
   * seconds after QEMU starts. A refused connection or a channel the agent drops is
   * retried with a new socket. Rejects with AgentError TIMEOUT (cause: the last failure),
   * VERSION_MISMATCH, or CANCELLED when `signal` aborts.
   */
  static async connect(socketPath: string, opts: ConnectOptions): Promise<AgentClient & { agentInfo: HelloResult }> {
    const deadline = Date.now() + opts.timeoutMs;
    const signal = opts.signal;
    let lastError: unknown;
    for (;;) {
      if (signal?.aborted) throw new AgentError('CANCELLED', 'connect aborted', { cause: signal.reason });
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        throw new AgentError('TIMEOUT', `agent on ${socketPath} did not answer within ${opts.timeoutMs} ms`, { cause: lastError });
      }
      let socket: Socket;
      try {
        socket = await openSocket(socketPath, signal);
      } catch (err) {
        if (signal?.aborted) throw new AgentError('CANCELLED', 'connect aborted', { cause: signal.reason });
        lastError = err;
        await sleep(Math.min(100, remaining));
        continue;
      }
      const client = new AgentClient(socket, opts);
      opts.onSocketOpen?.();
      try {
        await client.handshake(deadline, opts.helloIntervalMs ?? 500, signal);
        return client as AgentClient & { agentInfo: HelloResult };
      } catch (err) {
        client.close();
        const code = (err as AgentError).code;
        if (code !== 'CHANNEL_CLOSED' && code !== 'TIMEOUT') throw err;
        lastError = err;
        if (code === 'CHANNEL_CLOSED') await sleep(Math.min(100, Math.max(0, deadline - Date.now())));
      }
    }
  }

  private handshake(deadline: number, intervalMs: number, signal: AbortSignal | undefined): Promise<HelloResult> {
    return new Promise<HelloResult>((resolve, reject) => {
      let done = false;
      let timer: NodeJS.Timeout | undefined;
      const ids: number[] = [];
      const finish = (err: Error | undefined, info?: HelloResult) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        // Drop the hellos still in flight; a late reply to one is then counted as unknown.
        for (const id of ids) this.abandon(id);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(info as HelloResult);
      };
      const onAbort = () => finish(new AgentError('CANCELLED', 'connect aborted', { cause: signal?.reason }));
      signal?.addEventListener('abort', onAbort, { once: true });
      const attempt = () => {
        if (done) return;
        const remaining = deadline - Date.now();
        if (remaining <= 0) return finish(new AgentError('TIMEOUT', 'no hello reply before the deadline'));
        this.helloWithTimeout(remaining, ids).then(
          (info) => finish(undefined, info),
          (err: AgentError) => {
            if (err.code !== 'TIMEOUT') finish(err);
            else if (deadline - Date.now() <= 0) finish(err);
          },
        );
        timer = setTimeout(attempt, Math.min(intervalMs, remaining));
      };
      attempt();
    });
  }

  hello(): Promise<HelloResult> {
    return this.helloWithTimeout(this.requestTimeoutMs);
  }

  private async helloWithTimeout(timeoutMs: number, ids?: number[]): Promise<HelloResult> {
    const req = this.request('hello', { protocolVersion: PROTOCOL_VERSION, windowBytes: this.windowBytes, sessionId: this.sessionId }, { timeoutMs });
    ids?.push(req.id);
    const info = await req.result;
    if (info.protocolVersion !== PROTOCOL_VERSION) {
      throw new AgentError('VERSION_MISMATCH', `agent speaks protocol ${info.protocolVersion}, host ${PROTOCOL_VERSION}`);
    }
    this.agentInfo = info;
    return info;
  }

  health(): Promise<HealthResult> {
    return this.request('health', {}).result;
  }

  /** Waits in the guest until dockerd answers `GET /_ping`; rejects with TIMEOUT after `timeoutMs`. */
  dockerReady(timeoutMs: number): Promise<DockerReadyResult> {
    return this.request('docker.ready', { timeoutMs }, { timeoutMs: timeoutMs + DOCKER_READY_MARGIN_MS }).result;
  }

  async configure(args: SysConfigureArgs): Promise<void> {
    await this.request('sys.configure', args).result;
  }

  /** Sets the guest's MAC, address, default route and resolver (idempotent; see SysNetworkArgs). */
  network(args: SysNetworkArgs): Promise<SysNetworkResult> {
    return this.request('sys.network', args, { timeoutMs: (args.waitMs ?? 10_000) + 30_000 }).result;
  }

  /**
   * Runs a command. stdout/stderr chunks reach the handlers while it runs. Without
   * `args.timeoutMs` there is no host-side timeout (a command may run for as long as it likes).
   */
  exec(args: ExecArgs, handlers: ExecHandlers = {}): ExecHandle {
    let handlerError: unknown;
    const receivers = new Map<StreamName, StreamReceiver>();
    const receiver = (s: StreamName) => {
      let r = receivers.get(s);
      if (!r) {
        r = new StreamReceiver((n) => this.sendFrame({ k: 'ack', id, s, n }), this.windowBytes);
        receivers.set(s, r);
      }
      return r;
    };
    const stdin = new StreamSender(
      (b) => this.sendFrame({ k: 'data', id, s: 'stdin' }, b),
      () => this.sendFrame({ k: 'end', id, s: 'stdin' }),
      this.windowBytes,
    );
    const { id, result: raw } = this.request('exec', args, {
      timeoutMs: args.timeoutMs === undefined ? 0 : args.timeoutMs + EXEC_TIMEOUT_MARGIN_MS,
      onData: (s, body) => {
        const handler = s === 'stdout' ? handlers.onStdout : s === 'stderr' ? handlers.onStderr : undefined;
        if (s !== 'stdout' && s !== 'stderr') {
          this.stats.unexpectedFrames++;
          return;
        }
        const r = receiver(s);
        r.received(body.length);
        const ack = () => r.consumed(body.length);
        try {
          const ret = handler?.(body);
          if (ret && typeof ret.then === 'function') ret.then(ack, (err: unknown) => ((handlerError ??= err), ack()));
          else ack();
        } catch (err) {
          handlerError ??= err;
          ack();
        }
      },
      onAck: (s, n) => {
        if (s === 'stdin') stdin.ack(n);
        else this.stats.unexpectedFrames++;
      },
      onGiveUp: () => void quiet(this.request('exec.signal', { execId: id, signal: 'SIGKILL' }).result),
    });
    const result = quiet(
      raw.then(
        (res) => {
          stdin.destroy();
          if (handlerError !== undefined) throw handlerError;
          return res;
        },
        (err: unknown) => {
          stdin.destroy();
          throw err;
        },
      ),
    );
    return {
      id,
      result,
      writeStdin: async (b: Buffer) => {
        if (!args.stdin) throw new AgentError('INVALID_ARGUMENT', 'exec was started without stdin: true');
        if (!this.isPending(id)) return;
        if (!stdin.write(b)) await stdin.drained();
      },
      endStdin: () => {
        if (args.stdin && this.isPending(id)) stdin.end();
      },
      signal: async (sig: string) => {
        await this.request('exec.signal', { execId: id, signal: sig }).result;
      },
    };
  }

  /**
   * Opens a TCP connection inside the guest to 127.0.0.1:`port` (see TcpConnectArgs).
   * `onData` gets the guest's bytes as they arrive (a returned promise delays the ack:
   * backpressure reaches the guest socket); `onEnd` when the guest half-closed. No timeout.
   */
  tcpConnect(port: number, handlers: { onData(b: Buffer): void | Promise<void>; onEnd?(): void }): TcpHandle {
    const receiver = new StreamReceiver((n) => this.sendFrame({ k: 'ack', id, s: 'stdout', n }), this.windowBytes);
    const up = new StreamSender(
      (b) => this.sendFrame({ k: 'data', id, s: 'stdin' }, b),
      () => this.sendFrame({ k: 'end', id, s: 'stdin' }),
      this.windowBytes,
    );
    const { id, result: raw } = this.request(
      'tcp.connect',
      { port },
      {
        timeoutMs: 0,
        onData: (s, body) => {
          if (s !== 'stdout') return void this.stats.unexpectedFrames++;
          receiver.received(body.length);
          const ack = () => receiver.consumed(body.length);
          try {
            const ret = handlers.onData(body);
            if (ret && typeof ret.then === 'function') ret.then(ack, ack);
            else ack();
          } catch {
            ack();
          }
        },
        onEnd: (s) => {
          if (s === 'stdout') handlers.onEnd?.();
        },
        onAck: (s, n) => (s === 'stdin' ? up.ack(n) : this.stats.unexpectedFrames++),
        onGiveUp: () => this.sendFrame({ k: 'end', id, s: 'stdin', cancel: true }),
      },
    );
    const result = quiet(raw.finally(() => up.destroy()));
    return {
      id,
      result,
      write: async (b: Buffer) => {
        if (!this.isPending(id)) return;
        if (!up.write(b)) await up.drained();
      },
      end: () => {
        if (this.isPending(id)) up.end();
      },
      close: () => {
        if (this.isPending(id)) this.abandon(id);
      },
    };
  }

  /**
   * Uploads `source` to `path` atomically (temp file + rename in the guest). The reply's
   * size and sha256 are checked against what was sent. A failing source cancels the upload.
   */
  writeFile(path: string, source: Readable, opts: WriteFileOptions = {}): Promise<FileTransferResult> {
    const hash = createHash('sha256');
    let bytes = 0;
    const sender = new StreamSender(
      (b) => this.sendFrame({ k: 'data', id, s: 'file' }, b),
      () => this.sendFrame({ k: 'end', id, s: 'file' }),
      this.windowBytes,
    );
    const { id, result } = this.request(
      'file.write',
      { path, ...(opts.mode !== undefined && { mode: opts.mode }), ...(opts.mkdirs !== undefined && { mkdirs: opts.mkdirs }) },
      {
        idle: true,
        onAck: (s, n) => (s === 'file' ? sender.ack(n) : this.stats.unexpectedFrames++),
        onGiveUp: () => this.sendFrame({ k: 'end', id, s: 'file', cancel: true }),
      },
    );
    let sourceError: unknown;
    const onData = (chunk: Buffer | string) => {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      hash.update(b);
      bytes += b.length;
      if (!sender.write(b)) source.pause();
    };
    const onDrain = () => source.resume();
    const onEnd = () => sender.end();
    const onError = (err: unknown) => {
      sourceError = err;
      sender.destroy();
      this.sendFrame({ k: 'end', id, s: 'file', cancel: true });
    };
    const cleanup = () => {
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      sender.off('drain', onDrain);
      sender.destroy();
    };
    source.on('data', onData);
    source.on('end', onEnd);
    source.on('error', onError);
    sender.on('drain', onDrain);
    return result.then(
      (res) => {
        cleanup();
        const sha256 = hash.digest('hex');
        if (res.bytes !== bytes || res.sha256 !== sha256) {
          throw new AgentError('PROTOCOL_ERROR', `agent stored ${res.bytes} bytes (${res.sha256}), host sent ${bytes} (${sha256})`);
        }
        return res;
      },
      (err: unknown) => {
        cleanup();
        if (!source.destroyed) source.destroy();
        throw sourceError ?? err;
      },
    );
  }

  /**
   * Downloads `path`. The stream applies backpressure through acks (a reader that stops reading
   * stops the agent, without timing out: the idle timeout runs only while the agent has credit);
   * destroying it early
   * cancels the read (result rejects with CANCELLED). `result` never causes an unhandled
   * rejection if ignored; it also verifies the size and sha256 the agent reports.
   */
  readFile(path: string): { stream: Readable; result: Promise<FileTransferResult> } {
    const hash = createHash('sha256');
    let bytes = 0;
    let unackedConsumed = 0;
    let ended = false;
    let settled = false;
    const receiver = new StreamReceiver((n) => this.sendFrame({ k: 'ack', id, s: 'file', n }), this.windowBytes);
    const stream = new Readable({
      highWaterMark: 256 * 1024,
      read: () => {
        receiver.consumed(unackedConsumed);
        unackedConsumed = 0;
        this.holdTimer(id, false);
      },
      destroy: (err, cb) => {
        this.holdTimer(id, false);
        if (!ended && !settled) this.sendFrame({ k: 'end', id, s: 'file', cancel: true });
        cb(err);
      },
    });
    const failStream = (err: Error) => {
      if (stream.destroyed) return;
      if (stream.listenerCount('error') > 0) stream.destroy(err);
      else stream.destroy();
    };
    const { id, result: raw } = this.request(
      'file.read',
      { path },
      {
        idle: true,
        onData: (s, body) => {
          if (s !== 'file' || ended) {
            this.stats.unexpectedFrames++;
            return;
          }
          receiver.received(body.length);
          hash.update(body);
          bytes += body.length;
          if (stream.destroyed) return;
          if (stream.push(body)) receiver.consumed(body.length);
          else {
            // Our reader is behind: credit waits for it, and so does the idle timeout.
            unackedConsumed += body.length;
            this.holdTimer(id, true);
          }
        },
        onEnd: (s, cancel) => {
          if (s !== 'file' || ended) return;
          ended = true;
          if (cancel) failStream(new AgentError('CANCELLED', `agent aborted reading ${path}`));
        },
        onGiveUp: () => this.sendFrame({ k: 'end', id, s: 'file', cancel: true }),
      },
    );
    const result = quiet(
      raw.then(
        (res) => {
          settled = true;
          const sha256 = hash.digest('hex');
          if (!ended || res.bytes !== bytes || res.sha256 !== sha256) {
            const err = new AgentError('PROTOCOL_ERROR', `agent reported ${res.bytes} bytes (${res.sha256}), host received ${bytes} (${sha256})`);
            failStream(err);
            throw err;
          }
          if (!stream.destroyed) stream.push(null);
          return res;
        },
        (err: Error) => {
          settled = true;
          failStream(err);
          throw err;
        },
      ),
    );
    return { stream, result };
  }

  stat(path: string): Promise<FileStatResult> {
    return this.request('file.stat', { path }).result;
  }

  /** Lists a directory (all pages), sorted by name. */
  async list(path: string): Promise<DirEntry[]> {
    const entries: DirEntry[] = [];
    let offset = 0;
    for (;;) {
      const page = await this.request('file.list', { path, offset }).result;
      entries.push(...page.entries);
      if (page.nextOffset === null) return entries;
      if (page.nextOffset <= offset || entries.length > MAX_LIST_ENTRIES) {
        throw new AgentError('PROTOCOL_ERROR', `agent returned a bad list page (offset ${offset} → ${page.nextOffset})`);
      }
      offset = page.nextOffset;
    }
  }

  /**
   * A background-process op (proc.*): one request, one reply. `timeoutMs` overrides the
   * request timeout (0: none), for reads and waits that block in the guest.
   */
  proc<O extends Extract<OpName, `proc.${string}`>>(op: O, args: OpArgs<O>, timeoutMs?: number): Promise<OpResult<O>> {
    return this.request(op, args, timeoutMs === undefined ? {} : { timeoutMs }).result;
  }

  /** rename(2) in the guest. */
  async rename(from: string, to: string): Promise<void> {
    await this.request('file.rename', { from, to }).result;
  }

  async mkdir(path: string, opts: { recursive?: boolean; mode?: number } = {}): Promise<void> {
    await this.request('file.mkdir', { path, ...opts }).result;
  }

  async remove(path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    await this.request('file.remove', { path, ...opts }).result;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function openSocket(path: string, signal: AbortSignal | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(path);
    const onAbort = () => {
      socket.destroy();
      reject(new AgentError('CANCELLED', 'connect aborted'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(err);
    });
  });
}
