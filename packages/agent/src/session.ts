// One host connection: decodes frames, validates every header and every op's args, runs
// ops concurrently, routes stream frames, and replies. Nothing the host sends can throw out
// of here: undecodable bytes get an id-0 error reply and then either end the connection
// (unix socket) or make the session resynchronise on the next `hello` (virtio port, where a
// host can be replaced without the guest seeing EOF), a bad request gets an error reply,
// and a failing op is turned into a coded error.
//
// A `hello` carrying a sessionId different from the current one starts a new logical
// session on the same byte stream: everything the previous host started is aborted (its
// execs killed) and its replies are suppressed, so request ids can be reused safely.

import {
  AgentError,
  DEFAULT_WINDOW_BYTES,
  FrameDecoder,
  ProtocolError,
  StreamSender,
  checkHeader,
  checkOp,
  encodeFrame,
  errnoToCode,
  isOpName,
  type Header,
  type ReqHeader,
  type StreamName,
} from '@kiln/protocol';
import { Inbox, cancelled } from './inbox.js';
import { errorFields, log } from './log.js';
import { handlers, type AgentConfig, type ExecEntry, type OpContext } from './ops/index.js';
import { Resync } from './resync.js';

/** Where frames go: a unix socket in tests, the virtio-serial port in a guest. */
export interface Transport {
  write(frame: Buffer): void;
}

export interface SessionOptions {
  /** What to do with undecodable input: 'close' calls onFatal (the owner drops the connection); 'resync' waits for the next hello. */
  onBadInput: 'close' | 'resync';
  /** Called when onBadInput is 'close'. */
  onFatal?(err: ProtocolError): void;
}

interface Running {
  controller: AbortController;
  senders: Map<StreamName, StreamSender>;
  inboxes: Map<StreamName, Inbox>;
  /** Set when a new host session superseded this request: it must not send anything more. */
  stale: boolean;
}

const MAX_MESSAGE_CHARS = 1000;
/** Requests beyond this many at once are refused, so a runaway host cannot exhaust the guest. */
const MAX_CONCURRENT_REQUESTS = 1024;

export class Session {
  private decoder = new FrameDecoder();
  private resync: Resync | undefined;
  private readonly running = new Map<number, Running>();
  /** Running execs by request id, for exec.signal. */
  readonly execs = new Map<number, ExecEntry>();
  windowBytes = DEFAULT_WINDOW_BYTES;
  private sessionId: string | undefined;
  private disposed = false;

  constructor(
    private readonly transport: Transport,
    readonly config: AgentConfig,
    private readonly opts: SessionOptions,
  ) {}

  get isDisposed(): boolean {
    return this.disposed;
  }

  push(chunk: Buffer): void {
    if (this.disposed) return;
    if (this.resync) {
      const rest = this.resync.push(chunk);
      if (!rest) return;
      log('info', 'resynchronised on a hello frame');
      this.resync = undefined;
      this.decoder = new FrameDecoder();
      chunk = rest;
    }
    try {
      for (const frame of this.decoder.push(chunk)) {
        const checked = checkHeader(frame.header);
        if (!checked.ok) throw new ProtocolError('MALFORMED_HEADER', `invalid header: ${checked.message}`);
        this.onFrame(checked.header, frame.body);
        if (this.disposed || this.resync) return;
      }
    } catch (err) {
      this.badInput(err instanceof ProtocolError ? err : new ProtocolError('PROTOCOL_ERROR', String(err), { cause: err }));
    }
  }

  /** Aborts every running op (killing execs); later frames are ignored and nothing more is sent. */
  dispose(): void {
    if (this.disposed) return;
    this.reset(cancelled('session closed'));
    this.disposed = true;
  }

  private badInput(err: ProtocolError): void {
    log('warn', 'bad input from host', { code: err.code, err: err.message, then: this.opts.onBadInput });
    this.send({ k: 'res', id: 0, ok: false, error: { code: err.code, message: truncate(err.message) } });
    if (this.opts.onBadInput === 'resync') {
      this.reset(cancelled('bad input from host'));
      this.sessionId = undefined;
      this.resync = new Resync();
      return;
    }
    this.dispose();
    this.opts.onFatal?.(err);
  }

  /** Ends everything the current host started. */
  private reset(reason: AgentError): void {
    for (const r of this.running.values()) {
      r.stale = true;
      this.abort(r, reason);
    }
    this.running.clear();
    this.execs.clear();
    this.windowBytes = DEFAULT_WINDOW_BYTES;
  }

  private onFrame(h: Header, body: Buffer): void {
    switch (h.k) {
      case 'req':
        void this.run(h);
        return;
      case 'res':
        throw new ProtocolError('PROTOCOL_ERROR', 'the host sent a reply');
      case 'data': {
        const r = this.running.get(h.id);
        if (r) this.inbox(h.id, r, h.s).push(body);
        return; // late data for a finished request is normal (e.g. stdin after exit)
      }
      case 'end': {
        const r = this.running.get(h.id);
        if (!r) return;
        if (h.cancel) this.abort(r, cancelled(`stream ${h.s}`));
        else this.inbox(h.id, r, h.s).end();
        return;
      }
      case 'ack': {
        const sender = this.running.get(h.id)?.senders.get(h.s);
        sender?.ack(h.n);
        return;
      }
    }
  }

  private async run(h: ReqHeader): Promise<void> {
    const { id, op } = h;
    if (op === 'hello') this.maybeNewSession(h.args);
    if (this.running.has(id)) {
      log('warn', 'ignoring request with an id already in use', { id, op });
      return;
    }
    if (this.running.size >= MAX_CONCURRENT_REQUESTS) {
      return this.reply(id, undefined, new AgentError('INTERNAL', `too many concurrent requests (${MAX_CONCURRENT_REQUESTS})`));
    }
    if (!isOpName(op)) return this.reply(id, undefined, new AgentError('UNKNOWN_OP', `unknown op "${op.slice(0, 64)}"`));
    const valid = checkOp(op, 'args', h.args);
    if (!valid.ok) return this.reply(id, undefined, new AgentError('INVALID_ARGUMENT', `${op}: ${valid.message}`));

    const r: Running = { controller: new AbortController(), senders: new Map(), inboxes: new Map(), stale: false };
    this.running.set(id, r);
    const ctx: OpContext = {
      id,
      signal: r.controller.signal,
      session: this,
      sender: (s) => this.sender(id, r, s),
      input: (s) => this.inbox(id, r, s),
    };
    const started = Date.now();
    try {
      const handler = handlers[op] as (ctx: OpContext, args: unknown) => Promise<unknown>;
      const result = await handler(ctx, h.args);
      if (r.controller.signal.aborted) throw r.controller.signal.reason;
      this.reply(id, r, undefined, result);
    } catch (err) {
      if (!(err instanceof AgentError)) log('debug', 'op failed', { id, op, ...errorFields(err) });
      this.reply(id, r, err);
    } finally {
      for (const s of r.senders.values()) s.destroy();
      for (const i of r.inboxes.values()) i.fail(cancelled('request finished'));
      if (this.running.get(id) === r) this.running.delete(id);
      log('debug', 'op done', { id, op, ms: Date.now() - started });
    }
  }

  /** A hello from a different host session supersedes everything the previous one started. */
  private maybeNewSession(args: unknown): void {
    const sessionId = (args as { sessionId?: unknown } | null)?.sessionId;
    if (typeof sessionId !== 'string' || sessionId === this.sessionId) return;
    if (this.sessionId !== undefined && this.running.size > 0) {
      log('info', 'new host session: aborting the previous one', { running: this.running.size });
    }
    this.reset(cancelled('superseded by a new host session'));
    this.sessionId = sessionId;
  }

  private reply(id: number, r: Running | undefined, err: unknown, result?: unknown): void {
    if (this.disposed || r?.stale) return;
    if (err === undefined) {
      try {
        this.transport.write(encodeFrame({ k: 'res', id, ok: true, result }));
        return;
      } catch (encodeErr) {
        err = new AgentError('INTERNAL', `reply not encodable: ${(encodeErr as Error).message}`);
      }
    }
    const code = err instanceof AgentError ? err.code : errnoToCode(err);
    const message = err instanceof Error ? err.message : String(err);
    this.send({ k: 'res', id, ok: false, error: { code, message: truncate(message) } });
  }

  private send(h: Header, body?: Buffer, r?: Running): void {
    if (this.disposed || r?.stale) return;
    this.transport.write(encodeFrame(h, body));
  }

  private sender(id: number, r: Running, s: StreamName): StreamSender {
    let sender = r.senders.get(s);
    if (!sender) {
      sender = new StreamSender(
        (b) => this.send({ k: 'data', id, s }, b, r),
        () => this.send({ k: 'end', id, s }, undefined, r),
        this.windowBytes,
      );
      if (r.stale || r.controller.signal.aborted) sender.destroy();
      r.senders.set(s, sender);
    }
    return sender;
  }

  private inbox(id: number, r: Running, s: StreamName): Inbox {
    let inbox = r.inboxes.get(s);
    if (!inbox) {
      inbox = new Inbox((n) => this.send({ k: 'ack', id, s, n }, undefined, r), this.windowBytes);
      if (r.controller.signal.aborted) inbox.fail(r.controller.signal.reason as Error);
      r.inboxes.set(s, inbox);
    }
    return inbox;
  }

  private abort(r: Running, reason: AgentError): void {
    if (r.controller.signal.aborted) return;
    r.controller.abort(reason);
    for (const s of r.senders.values()) s.destroy();
    for (const i of r.inboxes.values()) i.fail(reason);
  }
}

function truncate(s: string): string {
  return s.length > MAX_MESSAGE_CHARS ? `${s.slice(0, MAX_MESSAGE_CHARS)}…` : s;
}
