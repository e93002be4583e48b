/**
 * The test "internet"'s web servers, run inside the lab namespace by netlab.ts:
 * `node netlab-server.js '[{"host":"198.51.100.10","port":80}, …]'`. Every server answers
 * `GET /` with `hello <host>:<port>` and `GET /bytes/N` with N bytes (throughput bench).
 * Prints `ready` once all listen.
 */
import { createServer } from 'node:http';

const listeners = JSON.parse(process.argv[2] ?? '[]') as Array<{ host: string; port: number }>;
const chunk = Buffer.alloc(64 * 1024, 0x61);

let pending = listeners.length;
for (const { host, port } of listeners) {
  const server = createServer((req, res) => {
    const m = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
    if (m) {
      let left = Number(m[1]);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(left) });
      const pump = (): void => {
        while (left > 0) {
          const n = Math.min(left, chunk.length);
          left -= n;
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`hello ${host}:${port}\n`);
  });
  server.keepAliveTimeout = 30_000;
  server.listen(port, host, () => {
    if (--pending === 0) process.stdout.write('ready\n');
  });
}
process.on('SIGTERM', () => process.exit(0));
