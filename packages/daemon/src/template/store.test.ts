import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TemplateStore } from './store.js';

describe('TemplateStore.removePartial', () => {
  let stateDir: string;
  before(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'kiln-tplstore-'));
  });
  after(() => rm(stateDir, { recursive: true, force: true }));

  it("removes a crashed build's temp dir and leaves a build still running in another process", async () => {
    const store = new TemplateStore(stateDir);
    const mine = store.tempDir('abc'); // this process: alive
    const gone = spawnSync('true').pid ?? 0; // a process that has exited
    assert.ok(gone > 0);
    const crashed = join(store.root, `.tmp-abc-${gone}-0a1b2c`);
    const legacy = join(store.root, '.tmp-snap-0123456789ab'); // an older kilnd's name, no pid
    const finished = join(store.root, 'abc');
    for (const d of [mine, crashed, legacy, finished]) await mkdir(d, { recursive: true });
    const removed = await store.removePartial();
    assert.deepEqual(removed.sort(), [basename(crashed), basename(legacy)].sort());
    assert.deepEqual((await readdir(store.root)).sort(), [basename(mine), 'abc'].sort());
  });
});
