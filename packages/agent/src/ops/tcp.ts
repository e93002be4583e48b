// tcp.connect: the sandbox proxy's path into the guest. A TCP connection from the agent to
// 127.0.0.1:port, its two directions carried as the request's stdin (host→guest) and stdout
// (guest→host) streams, both flow-controlled: a slow reader on either side stops the other
// side's reads instead of buffering. No guest network interface is involved, so it works with
// networking off and the guest's egress policy has no say in it.

import { connect, type Socket } from 'node:net';
import { AgentError, errnoToCode } from '@kiln/protocol';
import type { OpHandler } from './context.js';

export const tcpConnect: OpHandler<'tcp.connect'> = async (ctx, { port }) => {
  const sock: Socket = connect({ host: '127.0.0.1', port, noDelay: true });
  const opened = await new Promise<Error | undefined>((resolve) => {
    sock.once('connect', () => resolve(undefined));
    sock.once('error', (err) => resolve(err));
  });
  if (opened) {
    sock.destroy();
    const code = errnoToCode(opened);
    throw new AgentError(code, `127.0.0.1:${port}: ${opened.message}`);
  }
  let bytesIn = 0;
  let bytesOut = 0;
  const out = ctx.sender('stdout');
  const inbox = ctx.input('stdin');
  const onAbort = () => sock.destroy();
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  sock.on('error', () => undefined);
  sock.on('data', (b: Buffer) => {
    bytesOut += b.length;
    if (!out.write(b) && !out.isFinished) sock.pause();
  });
  out.on('drain', () => sock.resume());
  sock.on('end', () => out.end());
  // Host → guest: write each chunk, ack it once the socket took it.
  const feed = (async () => {
    try {
      for (;;) {
        const b = await inbox.read();
        if (b === null) break;
        bytesIn += b.length;
        await new Promise<void>((resolve) => sock.write(b, () => resolve()));
        inbox.ack(b.length);
      }
      sock.end();
    } catch {
      sock.destroy();
    }
  })();
  try {
    await new Promise<void>((resolve) => sock.once('close', () => resolve()));
    out.end();
    if (!ctx.signal.aborted) await Promise.race([out.drained(), new Promise((r) => ctx.signal.addEventListener('abort', r, { once: true }))]);
    void feed;
    if (ctx.signal.aborted) throw ctx.signal.reason;
    return { bytesIn, bytesOut };
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
};
