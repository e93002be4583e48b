/**
 * Guest logs: GET /v1/sandboxes/:id/logs?service=&tail=&follow= → text/plain, one line per
 * log line: `<ISO time> <service> <text>`. Served from kilnd's store, so it works while the
 * sandbox runs and after it is destroyed (until retention removes the logs). With follow,
 * new lines stream until the sandbox's logs close (it is destroyed) or the client leaves.
 * Lines leave only as fast as the client reads them (body-stream.ts). The guest is never held
 * back by a reader: a follower that falls more than FOLLOW_QUEUE_BYTES behind skips lines (they
 * stay in the store) and is told how many bytes it missed.
 */
import type { FastifyInstance } from 'fastify';
import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import { sandboxNotFound } from '../../errors.js';
import type { GuestLogs } from '../../logs/guest-logs.js';
import { formatLine, LOG_SERVICES, type LogLine } from '../../logs/store.js';
import type { SandboxManager } from '../../sandbox/manager.js';
import { SandboxIdParams } from '@kiln/contract';
import { bodyFrom, sendBody } from '../body-stream.js';

/** Bytes of new lines a follower may fall behind before lines are skipped for it. */
export const FOLLOW_QUEUE_BYTES = 1024 * 1024;

/** A follower's backlog of live lines: bounded, counting what it had to skip. */
class FollowQueue {
  private lines: string[] = [];
  private bytes = 0;
  private skipped = 0;
  private wake: (() => void) | null = null;
  closed = false;

  push(s: string): void {
    const n = Buffer.byteLength(s);
    if (this.bytes + n > FOLLOW_QUEUE_BYTES) this.skipped += n;
    else {
      this.lines.push(s);
      this.bytes += n;
    }
    this.notify();
  }

  close(): void {
    this.closed = true;
    this.notify();
  }

  notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  async *drain(signal: AbortSignal): AsyncGenerator<string> {
    signal.addEventListener('abort', () => this.notify(), { once: true });
    while (!signal.aborted) {
      const s = this.lines.shift();
      if (s !== undefined) {
        this.bytes -= Buffer.byteLength(s);
        yield s;
      } else if (this.skipped > 0) {
        yield `${new Date().toISOString()} kiln ${this.skipped} bytes of log lines skipped for this reader (it fell behind); they are in the stored log\n`;
        this.skipped = 0;
      } else if (this.closed) return;
      else await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

const LogsQuery = Type.Object(
  {
    service: Type.Optional(Type.Union(LOG_SERVICES.map((s) => Type.Literal(s)), { description: 'Only this service: console, dockerd or agent. Default all.' })),
    tail: Type.Optional(Type.Integer({ minimum: 0, description: 'Only the last N stored lines. Default all.' })),
    follow: Type.Optional(Type.Boolean({ description: 'Keep streaming new lines. Default false.' })),
  },
  { additionalProperties: false },
);

export function registerLogRoutes(app: FastifyInstance, manager: SandboxManager, logs: GuestLogs): void {
  app.get<{ Params: Static<typeof SandboxIdParams>; Querystring: Static<typeof LogsQuery> }>(
    '/v1/sandboxes/:id/logs',
    { schema: { summary: 'Guest logs (console, dockerd, agent), also after the sandbox is destroyed', params: SandboxIdParams, querystring: LogsQuery } },
    async (req, reply) => {
      const id = req.params.id;
      let exists = true;
      try {
        manager.get(id);
      } catch {
        exists = false;
      }
      if (!exists && !logs.has(id)) throw sandboxNotFound(id);
      const want = (l: LogLine) => req.query.service === undefined || l.service === req.query.service;
      if (exists && req.query.follow && !logs.isLive(id)) logs.open(id);
      // read() is synchronous and follow() subscribes in the same tick: no line is lost or doubled.
      let lines = logs.read(id).filter(want);
      if (req.query.tail !== undefined) lines = req.query.tail === 0 ? [] : lines.slice(-req.query.tail);
      if (!req.query.follow || !logs.isLive(id)) {
        return sendBody(reply, bodyFrom(async function* () {
          for (const l of lines) yield formatLine(l);
        }), 'text/plain; charset=utf-8');
      }
      const queue = new FollowQueue();
      const stop = logs.follow(id, (l) => want(l) && queue.push(formatLine(l)), () => queue.close());
      const body = bodyFrom(async function* (signal) {
        try {
          for (const l of lines) yield formatLine(l);
          yield* queue.drain(signal);
        } finally {
          stop();
        }
      });
      return sendBody(reply, body, 'text/plain; charset=utf-8', { flushHeaders: true });
    },
  );
}
