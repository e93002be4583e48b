/** A stand-in for a line-protocol peer (the guest's kiln-guestctl) on a unix socket, for unit tests. */
import { createServer, type Server } from 'node:net';

/**
 * Listens on `path`; answers each request line with answer(line), or not at all when it
 * returns null. Every request line is appended to `seen`.
 */
export function lineServer(path: string, answer: (line: string) => string | null, seen: string[] = []): Promise<Server> {
  const server = createServer((s) => {
    let buf = '';
    s.setEncoding('utf8');
    s.on('data', (c: string) => {
      buf += c;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        seen.push(line);
        const a = answer(line);
        if (a !== null) s.write(`${a}\n`);
      }
    });
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}
