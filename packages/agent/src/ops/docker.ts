// docker.ready: poll dockerd's `GET /_ping` over its unix socket until it answers.

import { request } from 'node:http';
import { AgentError } from '@kiln/protocol';
import type { OpHandler } from './context.js';

const POLL_MS = 200;

/** True if dockerd at `socketPath` answers `/_ping` with 200 within `timeoutMs`. Never throws. */
export function pingDocker(socketPath: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy(new Error('ping timed out')));
    req.on('error', () => resolve(false));
    req.end();
  });
}

export const dockerReady: OpHandler<'docker.ready'> = async (ctx, { timeoutMs }) => {
  const socket = ctx.session.config.dockerSocket;
  const started = performance.now();
  for (;;) {
    const remaining = timeoutMs - (performance.now() - started);
    if (await pingDocker(socket, Math.max(50, Math.min(1000, remaining)))) return { waitedMs: Math.round(performance.now() - started) };
    if (ctx.signal.aborted) throw ctx.signal.reason;
    const left = timeoutMs - (performance.now() - started);
    if (left <= 0) throw new AgentError('TIMEOUT', `dockerd did not answer on ${socket} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(POLL_MS, left)));
  }
};
