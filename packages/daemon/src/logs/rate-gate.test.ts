import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LogCollector } from './collector.js';
import { ByteRateGate } from './rate-gate.js';
import { SandboxLogStore } from './store.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('rate gate: a burst passes, then reading waits as long as the excess takes at the rate', () => {
  let now = 0;
  const gate = new ByteRateGate(1000, 4000, () => now);
  assert.equal(gate.take(4000), 0, 'the burst passes at once');
  assert.equal(gate.take(500), 500, '500 bytes over: 0.5 s at 1000 B/s');
  now = 500;
  assert.equal(gate.take(0), 0, 'refilled after the wait');
  now = 100_000;
  assert.equal(gate.take(5000), 1000, 'idle time refills at most the burst');
});

/**
 * Floods the console socket like QEMU (as fast as the socket takes it) for 1.5 s against a
 * collector made with `rates` (undefined = its defaults); returns bytes written, read and seconds.
 */
async function floodConsole(rates: { logs?: number; console?: number }): Promise<{ written: number; received: number; s: number }> {
  const root = mkdtempSync(join(tmpdir(), 'kiln-rate-'));
  const clients: Socket[] = [];
  const server = createServer((c) => {
    c.on('error', () => undefined); // reset when the collector goes with data unread
    clients.push(c);
  });
  await new Promise<void>((r) => server.listen(join(root, 'console.sock'), r));
  const idle = createServer(() => undefined);
  await new Promise<void>((r) => idle.listen(join(root, 'logs.sock'), r));
  const store = new SandboxLogStore(join(root, 'logs'), 64 * 1024 * 1024);
  let received = 0;
  const append = store.append.bind(store);
  store.append = (service, text, time) => {
    received += Buffer.byteLength(text) + 1;
    append(service, text, time);
  };
  const collector = new LogCollector(store, { consoleSocket: join(root, 'console.sock'), logsSocket: join(root, 'logs.sock') }, 500, rates.logs, rates.console);
  try {
    collector.start();
    while (clients.length === 0) await sleep(10);
    const client = clients[0] as Socket;
    const chunk = 'kiln-console-flood-0123456789abcdef\n'.repeat(1000); // 36 KB
    let written = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 1500) {
      if (client.writableLength < 1024 * 1024) {
        client.write(chunk);
        written += chunk.length;
      }
      await sleep(5);
    }
    return { written, received, s: (performance.now() - t0) / 1000 };
  } finally {
    collector.stop();
    await sleep(50); // the closed sockets flush their last partial line
    store.close();
    for (const c of clients) c.destroy();
    server.close();
    idle.close();
    rmSync(root, { recursive: true, force: true });
  }
}

test('collector: a guest flooding its console is read at the rate, and its writes are held back', async () => {
  const rate = 32 * 1024;
  const { written, received, s } = await floodConsole({ console: rate });
  // read: the burst (max(64 KiB, 4 s of rate)) plus the rate, plus what sits in the last read chunk
  assert.ok(received <= rate * 4 + rate * s + 256 * 1024, `read ${received} bytes in ${s.toFixed(1)} s`);
  assert.ok(received >= rate * 4, `the burst was read (${received})`);
  // the writer was held back: most of what it wrote is still queued (kernel buffers, its own)
  assert.ok(written - received > 512 * 1024, `written ${written}, read ${received}`);
});

test('collector: by default the console gets 8 KiB/s after a 64 KiB burst, whatever the service-log rate', async () => {
  const { received, s } = await floodConsole({ logs: 1024 * 1024 });
  assert.ok(received >= 64 * 1024, `the burst was read (${received})`);
  assert.ok(received <= 64 * 1024 + 8 * 1024 * s + 64 * 1024, `read ${received} bytes in ${s.toFixed(1)} s`);
});
