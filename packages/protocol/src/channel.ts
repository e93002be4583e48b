// Host end of the framed RPC: request ids, pending requests, timeouts, stream routing and
// channel teardown. Every byte from the guest is hostile: a frame that fails to decode or
// to validate fails this channel (never the process), replies to unknown ids are counted
// and dropped, and results are checked against the op's schema.

import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { AgentError, ProtocolError } from './errors.js';
import { FrameDecoder, encodeFrame } from './frame.js';
import { DEFAULT_WINDOW_BYTES } from './flow.js';
import { checkHeader, checkOp, type Header, type OpArgs, type OpName, type OpResult, type StreamName } from './messages.js';

export interface ChannelOptions {
  /** Timeout of each non-streaming request, and idle timeout of streaming ones. Default 30 000 ms. */
  requestTimeoutMs?: number;
  /** Flow-control window per stream, both directions. Default 1 MiB. */
  windowBytes?: number;
}

export interface RequestHooks {
  /** Overrides the default timeout; 0 means none. */
  timeoutMs?: number;
  /** Restart the timer on every frame of this request (either direction) instead of timing the whole request. */
  idle?: boolean;
  onData?(s: StreamName, body: Buffer): void;
  onEnd?(s: StreamName, cancel: boolean): void;
  onAck?(s: StreamName, n: number): void;
  /** Called when the host gives up on the request (timeout, abandon) while the channel stays up: tell the agent to stop. */
  onGiveUp?(): void;
}

interface Pending {
  op: OpName;
  hooks: RequestHooks;
  timeoutMs: number;
  timer: NodeJS.Timeout | undefined;
  /** The host itself holds the request's stream back (its consumer is not reading): no idle timeout meanwhile. */
  held: boolean;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

/** Counters of guest misbehaviour that was tolerated (not fatal to the channel). */
export interface ChannelStats {
  /** Frames for ids that are not (or no longer) pending. */
  unknownIdFrames: number;
  /** Frames for a pending id on a stream that request does not use. */
  unexpectedFrames: number;
  /** Results that failed the op's result schema (the request was rejected). */
  invalidResults: number;
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- only narrows EventEmitter's event signatures
export interface RpcChannel {
  /** Emitted once when the channel ends or fails; `reason` is undefined after a local close(). */
  on(event: 'close', listener: (reason?: Error) => void): this;
  once(event: 'close', listener: (reason?: Error) => void): this;
  off(event: 'close', listener: (reason?: Error) => void): this;
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging -- typed 'close' event, see above
export class RpcChannel extends EventEmitter {
  readonly stats: ChannelStats = { unknownIdFrames: 0, unexpectedFrames: 0, invalidResults: 0 };
  protected readonly requestTimeoutMs: number;
  protected readonly windowBytes: number;
  private readonly decoder = new FrameDecoder();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly stream: Duplex,
    opts: ChannelOptions = {},
  ) {
    super();
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
    this.windowBytes = opts.windowBytes ?? DEFAULT_WINDOW_BYTES;
    stream.on('data', (chunk: Buffer) => this.onChunk(chunk));
    stream.on('end', () => this.fail(new AgentError('CHANNEL_CLOSED', 'the agent channel ended')));
    stream.on('close', () => this.fail(new AgentError('CHANNEL_CLOSED', 'the agent channel closed')));
    stream.on('error', (err) => this.fail(err));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes the channel; pending requests reject with CHANNEL_CLOSED. Emits 'close' with no reason. */
  close(): void {
    this.shutdown(undefined);
  }

  /** Starts request `op`; the returned promise settles with its validated result. */
  protected request<O extends OpName>(op: O, args: OpArgs<O>, hooks: RequestHooks = {}): { id: number; result: Promise<OpResult<O>> } {
    const id = this.nextId++;
    const result = new Promise<OpResult<O>>((resolve, reject) => {
      if (this.closed) {
        reject(new AgentError('CHANNEL_CLOSED', `cannot send ${op}: the agent channel is closed`));
        return;
      }
      const timeoutMs = hooks.timeoutMs ?? this.requestTimeoutMs;
      const p: Pending = { op, hooks, timeoutMs, timer: undefined, held: false, resolve: resolve as (v: unknown) => void, reject };
      this.pending.set(id, p);
      this.arm(id, p);
      this.sendFrame({ k: 'req', id, op, args });
    });
    return { id, result };
  }

  /** Sends one frame of request `id` (data/end/ack); a no-op once the channel or request is gone. */
  protected sendFrame(header: Header, body?: Buffer): void {
    if (this.closed) return;
    const p = header.k === 'req' ? undefined : this.pending.get(header.id);
    if (p?.hooks.idle) this.arm(header.id, p);
    this.stream.write(encodeFrame(header, body));
  }

  /** Gives up on request `id`: it rejects with CANCELLED and later frames for it count as unknown. */
  protected abandon(id: number): void {
    const p = this.pending.get(id);
    this.settle(id, new AgentError('CANCELLED', `request ${id} abandoned`));
    if (p) this.giveUp(p);
  }

  private giveUp(p: Pending): void {
    if (this.closed) return;
    try {
      p.hooks.onGiveUp?.();
    } catch {
      // best effort
    }
  }

  /**
   * Holds (or releases) request `id`'s idle timer: while the host withholds credit because its
   * own consumer is not reading, the agent's silence is expected, not a sign of a dead agent.
   */
  protected holdTimer(id: number, held: boolean): void {
    const p = this.pending.get(id);
    if (!p || p.held === held) return;
    p.held = held;
    if (held && p.timer) {
      clearTimeout(p.timer);
      p.timer = undefined;
    }
    if (!held) this.arm(id, p);
  }

  protected isPending(id: number): boolean {
    return this.pending.has(id);
  }

  private arm(id: number, p: Pending): void {
    if (p.timer) clearTimeout(p.timer);
    p.timer = undefined;
    if (p.timeoutMs <= 0 || p.held) return;
    p.timer = setTimeout(() => {
      this.settle(id, new AgentError('TIMEOUT', `${p.op} (request ${id}) got no ${p.hooks.idle ? 'activity' : 'reply'} within ${p.timeoutMs} ms`));
      this.giveUp(p);
    }, p.timeoutMs);
  }

  private settle(id: number, outcome: { value: unknown } | Error): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    if (outcome instanceof Error) p.reject(outcome);
    else p.resolve(outcome.value);
  }

  private onChunk(chunk: Buffer): void {
    if (this.closed) return;
    try {
      for (const frame of this.decoder.push(chunk)) {
        const checked = checkHeader(frame.header);
        if (!checked.ok) throw new ProtocolError('MALFORMED_HEADER', `invalid header from agent: ${checked.message}`);
        this.onFrame(checked.header, frame.body);
        if (this.closed) return;
      }
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private onFrame(h: Header, body: Buffer): void {
    if (h.k === 'req') throw new ProtocolError('PROTOCOL_ERROR', 'the agent sent a request');
    if (h.k === 'res' && h.id === 0) {
      const e = h.ok ? undefined : h.error;
      throw new AgentError(e?.code ?? 'PROTOCOL_ERROR', `the agent dropped the channel: ${e?.message ?? 'res with id 0'}`);
    }
    const p = this.pending.get(h.id);
    if (!p) {
      this.stats.unknownIdFrames++;
      return;
    }
    if (p.hooks.idle) this.arm(h.id, p);
    switch (h.k) {
      case 'res': {
        if (!h.ok) {
          this.settle(h.id, new AgentError(h.error.code, h.error.message));
          return;
        }
        const check = checkOp(p.op, 'result', h.result);
        if (!check.ok) {
          this.stats.invalidResults++;
          this.settle(h.id, new AgentError('PROTOCOL_ERROR', `invalid ${p.op} result from agent: ${check.message}`));
          return;
        }
        this.settle(h.id, { value: h.result });
        return;
      }
      case 'data':
        if (p.hooks.onData) p.hooks.onData(h.s, body);
        else this.stats.unexpectedFrames++;
        return;
      case 'end':
        if (p.hooks.onEnd) p.hooks.onEnd(h.s, h.cancel === true);
        else this.stats.unexpectedFrames++;
        return;
      case 'ack':
        if (p.hooks.onAck) p.hooks.onAck(h.s, h.n);
        else this.stats.unexpectedFrames++;
        return;
    }
  }

  private fail(reason: Error): void {
    this.shutdown(reason);
  }

  private shutdown(reason: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    const message = reason ? `agent channel closed: ${reason.message}` : 'agent channel closed';
    for (const id of [...this.pending.keys()]) {
      this.settle(id, new AgentError('CHANNEL_CLOSED', message, { cause: reason }));
    }
    this.stream.destroy();
    this.emit('close', reason);
  }
}
