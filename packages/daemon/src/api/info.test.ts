/** GET /v1/info of a whole kilnd (startDaemon) over the fake VMM driver. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { startDaemon } from '../daemon.js';
import { DEFAULT_CONFIG } from '../config.js';
import { FakeDriver } from '../testing/fakes.js';
import { KILN_VERSION } from '../version.js';

test('/v1/info names the version, the driver and its accelerator, the state dir, the image and the pool', async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'kiln-info-'));
  const driver = new FakeDriver();
  const d = await startDaemon(
    { stateDir, socket: join(stateDir, 'kiln.sock'), templates: false, poolSize: 0, network: { ...DEFAULT_CONFIG.network, enabled: false } },
    { driver, logger: pino({ level: 'silent' }) },
  );
  try {
    const res = await d.app.inject({ method: 'GET', url: '/v1/info' });
    assert.equal(res.statusCode, 200, res.body);
    const info = res.json() as { version: string; driver: Record<string, unknown>; image: unknown; stateDir: string; pool: { size: number; ready: number } };
    assert.equal(info.version, KILN_VERSION);
    assert.deepEqual(info.driver, JSON.parse(JSON.stringify(driver.capabilities())));
    assert.equal(info.stateDir, stateDir);
    assert.equal(info.image, null, 'no guest image in a fresh state dir');
    assert.equal(info.pool.size, 0);
    assert.equal(info.pool.ready, 0);
  } finally {
    await d.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
});
