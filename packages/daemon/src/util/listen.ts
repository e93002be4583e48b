/** Starting kilnd's own TCP servers (the API listener, the sandbox proxy). */
import type { Server } from 'node:http';

/**
 * Sets the timeouts of a server that carries long-lived requests (uploads, exec stdin, proxied
 * streams: no bound on a whole request; headers must still arrive within Node's headersTimeout)
 * and resolves once it listens on host:port, or rejects with the listen error.
 */
export async function listenLongLived(server: Server, port: number, host: string): Promise<void> {
  server.keepAliveTimeout = 65_000;
  server.requestTimeout = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
