// `kiln … | head`: the CLI's reader closes its pipe early. Every command must then exit 0
// quietly, never with an unhandled EPIPE stack. A fake kilnd on a unix socket serves a long
// event list (one big write by the CLI), an endless follow stream (many small writes) and an
// exec whose command never stops writing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CLI = join(import.meta.dirname, 'main.js');

const event = (seq: number) => ({ seq, sandboxId: 'sb-000000000001', at: 1_700_000_000_000 + seq, type: 'state', data: { state: 'running', seq } });

function fakeDaemon(socket: string): Promise<Server> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://kiln');
    if (req.method === 'POST' && url.pathname.endsWith('/exec')) {
      // An exec whose command never stops writing (yes).
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write(JSON.stringify({ type: 'started', execId: 'sb-000000000001.1' }) + '\n');
      const data = Buffer.from('sb-000000000001 y\n'.repeat(4096)).toString('base64');
      const push = () => {
        while (!res.destroyed && res.write(JSON.stringify({ type: 'stdout', data }) + '\n'));
      };
      res.on('drain', push);
      push();
      return;
    }
    if (url.pathname !== '/v1/events') {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no' } }));
      return;
    }
    if (url.searchParams.get('follow') !== 'true') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ events: Array.from({ length: 20_000 }, (_, i) => event(i + 1)) }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    let seq = 0;
    const push = () => {
      while (!res.destroyed && res.write(JSON.stringify(event(++seq)) + '\n'));
    };
    res.on('drain', push);
    push();
  });
  return new Promise((resolve) => server.listen(socket, () => resolve(server)));
}

/** Runs the CLI, reads its first chunk of stdout, then closes the pipe like `head -1` does. */
function runAndCloseEarly(socket: string, args: string[]): Promise<{ code: number | null; signal: string | null; first: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, '--socket', socket, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let first = '';
    let stderr = '';
    p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    p.stdout.once('data', (b: Buffer) => {
      first = b.toString();
      p.stdout.destroy();
    });
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, first, stderr }));
  });
}

test('a closed stdout ends every kind of command quietly with exit 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-cli-pipe-'));
  const socket = join(dir, 'kiln.sock');
  const server = await fakeDaemon(socket);
  t.after(() => {
    server.closeAllConnections();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  for (const args of [['events'], ['events', '--json'], ['events', '--follow'], ['exec', 'sb-000000000001', '--', 'yes']]) {
    const r = await runAndCloseEarly(socket, args);
    assert.match(r.first, /sb-000000000001/, `kiln ${args.join(' ')} printed its output first`);
    assert.equal(r.stderr, '', `kiln ${args.join(' ')} printed nothing on stderr`);
    assert.equal(r.signal, null);
    assert.equal(r.code, 0, `kiln ${args.join(' ')} exited 0`);
  }
});
