// Serving a unix socket instead of the port (tests, and debugging outside a VM). Like the
// port, it serves one connection at a time; later ones wait their turn.

import { createServer, type Socket } from 'node:net';
import { unlink } from 'node:fs/promises';
import { log } from './log.js';
import type { AgentConfig } from './ops/index.js';
import { Session } from './session.js';

export async function serveUnix(path: string, config: AgentConfig): Promise<void> {
  await unlink(path).catch(() => undefined);
  const waiting: Socket[] = [];
  let active: Socket | undefined;

  const next = () => {
    active = undefined;
    while (waiting.length > 0 && !active) {
      const socket = waiting.shift() as Socket;
      if (!socket.destroyed) serve(socket);
    }
  };

  const serve = (socket: Socket) => {
    active = socket;
    const session = new Session({ write: (frame) => void socket.write(frame) }, config, { onBadInput: 'close', onFatal: () => socket.end() });
    socket.on('data', (chunk: Buffer) => session.push(chunk));
    socket.on('error', () => undefined);
    socket.once('close', () => {
      session.dispose();
      next();
    });
  };

  const server = createServer((socket) => {
    socket.on('error', () => undefined);
    if (active) waiting.push(socket);
    else serve(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  log('info', 'listening', { path });
}
