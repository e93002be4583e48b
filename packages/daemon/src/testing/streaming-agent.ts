/**
 * A fake guest agent for flow-control tests: a real AgentClient on one end of an in-memory
 * channel, and on the other an agent whose `exec` writes stdout and whose `file.read` sends a
 * file as fast as the host's credit allows (through the protocol's own StreamSender, like
 * kiln-agent). It counts what it managed to send, so a test can see whether the host stopped
 * granting credit.
 */
import { createHash } from 'node:crypto';
import { Duplex, PassThrough } from 'node:stream';
import { AgentClient, encodeFrame, FrameDecoder, StreamSender, type StreamName } from '@kiln/protocol';

export interface StreamingAgent {
  client: AgentClient;
  /** Bytes of output/file the agent put on the wire so far. */
  readonly sentBytes: number;
  /** True while the agent has bytes queued that the host's window does not let it send. */
  readonly blocked: boolean;
  /** Bytes the host acknowledged so far. */
  readonly ackedBytes: number;
  close(): void;
}

const CHUNK = 64 * 1024;

/** `totalBytes`: how much each exec writes to stdout and each file.read sends (then it ends). */
export function streamingAgent(totalBytes: number, windowBytes = 256 * 1024): StreamingAgent {
  const toAgent = new PassThrough();
  const toHost = new PassThrough();
  const client = new AgentClient(Duplex.from({ readable: toHost, writable: toAgent }), { windowBytes, requestTimeoutMs: 60_000 });
  const decoder = new FrameDecoder();
  const senders = new Map<string, StreamSender>();
  const state = { sent: 0, acked: 0 };
  const send = (h: object, body?: Buffer) => toHost.write(encodeFrame(h, body));

  const stream = (id: number, s: StreamName, done: (bytes: number) => void) => {
    const sender = new StreamSender(
      (b) => {
        state.sent += b.length;
        send({ k: 'data', id, s }, b);
      },
      () => send({ k: 'end', id, s }),
      windowBytes,
    );
    senders.set(`${id}/${s}`, sender);
    let left = totalBytes;
    const pump = () => {
      while (left > 0) {
        const n = Math.min(CHUNK, left);
        left -= n;
        if (!sender.write(Buffer.alloc(n, 0x61))) return; // wait for credit, like the agent pausing the pipe
      }
      sender.off('drain', pump);
      sender.end();
      void sender.drained().then(() => done(totalBytes));
    };
    sender.on('drain', pump);
    pump();
  };

  toAgent.on('data', (c: Buffer) => {
    for (const { header } of decoder.push(c)) {
      const h = header as { k: string; id: number; op?: string; s?: string; n?: number; cancel?: boolean };
      if (h.k === 'ack') {
        state.acked += h.n ?? 0;
        senders.get(`${h.id}/${h.s}`)?.ack(h.n ?? 0);
      } else if (h.k === 'end' && h.cancel) {
        senders.get(`${h.id}/${h.s}`)?.destroy();
      } else if (h.k === 'req' && h.op === 'exec') {
        stream(h.id, 'stdout', () => send({ k: 'res', id: h.id, ok: true, result: { exitCode: 0, signal: null, timedOut: false, durationMs: 1 } }));
      } else if (h.k === 'req' && h.op === 'exec.signal') {
        for (const [k, s] of senders) if (k.startsWith(`${String((header as { args: { execId: number } }).args.execId)}/`)) s.destroy();
        send({ k: 'res', id: h.id, ok: true, result: {} });
      } else if (h.k === 'req' && h.op === 'file.stat') {
        send({ k: 'res', id: h.id, ok: true, result: { path: '/big', type: 'file', size: totalBytes, mode: 0o644, mtimeMs: 0 } });
      } else if (h.k === 'req' && h.op === 'file.read') {
        const hash = createHashOfA(totalBytes);
        stream(h.id, 'file', (bytes) => send({ k: 'res', id: h.id, ok: true, result: { bytes, sha256: hash } }));
      }
    }
  });

  return {
    client,
    get sentBytes() {
      return state.sent;
    },
    get ackedBytes() {
      return state.acked;
    },
    get blocked() {
      return [...senders.values()].some((s) => s.queued > 0 && !s.isFinished);
    },
    close: () => {
      client.close();
      toHost.end();
    },
  };
}

function createHashOfA(n: number): string {
  const h = createHash('sha256');
  const block = Buffer.alloc(CHUNK, 0x61);
  for (let left = n; left > 0; left -= CHUNK) h.update(left >= CHUNK ? block : block.subarray(0, left));
  return h.digest('hex');
}

/** Resolves once `cond()` has held for `quietMs` in a row (the system settled), or rejects after `maxMs`. */
export async function settled(cond: () => boolean, quietMs = 300, maxMs = 20_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  let since: number | null = null;
  for (;;) {
    if (cond()) since ??= Date.now();
    else since = null;
    if (since !== null && Date.now() - since >= quietMs) return;
    if (Date.now() > deadline) throw new Error('the condition never settled');
    await new Promise((r) => setTimeout(r, 10));
  }
}
