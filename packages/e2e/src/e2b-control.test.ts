/**
 * kiln as a backend for the real `e2b` SDK (npm, the version in packages/e2e/package.json),
 * control plane: a test kilnd with a TCP listener, E2B-shaped keys from `kiln key create --e2b`,
 * and the SDK configured by the three variables only (E2B_API_URL, E2B_SANDBOX_URL, E2B_API_KEY).
 * Create with metadata and envs, getInfo, Sandbox.list with metadata filters and paging,
 * setTimeout, betaPause + connect resuming with files intact, lifecycle onTimeout 'pause',
 * kill (and of a missing id:
 * false), a wrong key (AuthenticationError), and tenancy (another tenant's key neither sees nor
 * kills the sandbox).
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { AuthenticationError, Sandbox, SandboxNotFoundError } from 'e2b';
import { Sandbox as CodeInterpreter } from '@e2b/code-interpreter';
import { integrationSkipReason } from './harness.js';
import { E2bFixture } from './e2b-harness.js';

const skip = integrationSkipReason();

describe('the e2b SDK against kiln: control plane', { skip: skip ?? false }, () => {
  const fx = new E2bFixture('e2b-control');
  const run = `run-${Date.now().toString(36)}`;
  let sbx: Sandbox;

  before(async () => {
    await fx.start();
    fx.useEnv();
  });
  after(async () => {
    await fx.close();
  });
  const t = (name: string, fn: () => Promise<void>) => fx.test(name, fn);

  t('Sandbox.create with metadata and envs; getInfo shows them with E2B field values', async () => {
    sbx = await Sandbox.create({ metadata: { suite: run, role: 'first' }, envs: { KILN_E2B: 'yes' } });
    fx.track(sbx.sandboxId);
    assert.match(sbx.sandboxId, /^[0-9a-f]{32}$/);
    const info = await sbx.getInfo();
    assert.equal(info.sandboxId, sbx.sandboxId);
    assert.equal(info.templateId, 'base');
    assert.equal(info.state, 'running');
    assert.deepEqual(info.metadata, { suite: run, role: 'first' });
    const lifetime = info.endAt.getTime() - info.startedAt.getTime();
    assert.ok(lifetime > 250_000 && lifetime <= 300_000 + 60_000, `default timeout is 300 s (got ${lifetime} ms)`);
    // The envs are the sandbox's environment for every command (kiln's spec.env).
    const native = await fx.daemon.client.get(`sb-${sbx.sandboxId}`);
    assert.equal(native.spec.env.KILN_E2B, 'yes');
  });

  t('Sandbox.list: metadata filters and paging (limit, nextToken) through the SDK paginator', async () => {
    const second = await Sandbox.create({ metadata: { suite: run, role: 'second' } });
    fx.track(second.sandboxId);
    const all = await Sandbox.list({ query: { metadata: { suite: run } } }).nextItems();
    assert.deepEqual(new Set(all.map((s) => s.sandboxId)), new Set([sbx.sandboxId, second.sandboxId]));
    const firsts = await Sandbox.list({ query: { metadata: { suite: run, role: 'first' } } }).nextItems();
    assert.deepEqual(firsts.map((s) => s.sandboxId), [sbx.sandboxId]);
    assert.deepEqual(firsts[0]?.metadata, { suite: run, role: 'first' });
    assert.equal(firsts[0]?.state, 'running');
    const pager = Sandbox.list({ query: { metadata: { suite: run } }, limit: 1 });
    const pages: string[][] = [];
    while (pager.hasNext) pages.push((await pager.nextItems()).map((s) => s.sandboxId));
    assert.equal(pages.length, 2, 'one sandbox a page, and no empty third page');
    assert.deepEqual(new Set(pages.flat()), new Set([sbx.sandboxId, second.sandboxId]));
    assert.equal(await second.kill(), true);
    assert.deepEqual((await Sandbox.list({ query: { metadata: { suite: run } } }).nextItems()).map((s) => s.sandboxId), [sbx.sandboxId]);
  });

  t('setTimeout moves endAt (also shorter)', async () => {
    await sbx.setTimeout(120_000);
    const info = await sbx.getInfo();
    const left = info.endAt.getTime() - Date.now();
    assert.ok(left > 60_000 && left <= 120_000, `endAt is ~120 s away (got ${left} ms)`);
    await sbx.setTimeout(600_000);
    assert.ok((await sbx.getInfo()).endAt.getTime() - Date.now() > 500_000);
  });

  t('betaPause, then connect resumes it with files and processes intact', async () => {
    const kid = `sb-${sbx.sandboxId}`;
    const setup = await fx.daemon.sh(kid, 'echo kept > /tmp/e2b-pause.txt && (sleep 10000 >/dev/null 2>&1 & echo $! > /tmp/e2b-pause.pid)');
    assert.equal(setup.code, 0, setup.all);
    assert.equal(await sbx.betaPause(), true);
    assert.equal((await sbx.getInfo()).state, 'paused');
    assert.equal(await sbx.isRunning(), false, 'a paused sandbox is not running');
    assert.deepEqual((await Sandbox.list({ query: { metadata: { suite: run }, state: ['paused'] } }).nextItems()).map((s) => s.sandboxId), [sbx.sandboxId]);
    assert.equal(await Sandbox.pause(sbx.sandboxId), false, 'pausing a paused sandbox is false');
    const again = await Sandbox.connect(sbx.sandboxId);
    assert.equal(again.sandboxId, sbx.sandboxId);
    assert.equal((await again.getInfo()).state, 'running');
    assert.equal(await again.isRunning(), true);
    const check = await fx.daemon.sh(kid, 'cat /tmp/e2b-pause.txt && kill -0 "$(cat /tmp/e2b-pause.pid)" && echo alive');
    assert.equal(check.code, 0, check.all);
    assert.equal(check.out, 'kept\nalive\n');
    // connect on a running sandbox is fine too (200).
    assert.equal((await Sandbox.connect(sbx.sandboxId)).sandboxId, sbx.sandboxId);
  });

  t("lifecycle onTimeout 'pause': at its timeout the sandbox pauses (not killed), and connect resumes it with its files", async () => {
    const p = await Sandbox.create({ timeoutMs: 600_000, lifecycle: { onTimeout: 'pause' }, metadata: { suite: run, role: 'pauses' } });
    fx.track(p.sandboxId);
    const setup = await fx.daemon.sh(`sb-${p.sandboxId}`, 'echo still-here > /tmp/e2b-timeout.txt');
    assert.equal(setup.code, 0, setup.all);
    assert.equal((await p.getInfo()).lifecycle?.onTimeout, 'pause');
    // Nothing runs in the guest from here until it is resumed (a pause freezes a call in flight).
    await p.setTimeout(2000);
    let state = '';
    for (let i = 0; i < 300 && state !== 'paused'; i++) {
      state = (await p.getInfo()).state;
      if (state !== 'paused') await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(state, 'paused', 'paused at its timeout');
    const back = await Sandbox.connect(p.sandboxId, { timeoutMs: 60_000 });
    assert.equal((await back.getInfo()).state, 'running');
    assert.equal((await fx.daemon.sh(`sb-${p.sandboxId}`, 'cat /tmp/e2b-timeout.txt')).out, 'still-here\n');
    assert.equal(await back.kill(), true);
  });

  t('Sandbox.getMetrics answers E2B metric fields', async () => {
    // The static call: sandbox.getMetrics() also needs envdVersion ≥ 0.1.5 (the data plane's to raise).
    const metrics = await Sandbox.getMetrics(sbx.sandboxId);
    assert.equal(metrics.length, 1, 'the latest sample');
    for (const m of metrics) {
      assert.ok(m.timestamp instanceof Date);
      assert.equal(m.cpuCount, (await sbx.getInfo()).cpuCount);
      assert.ok(m.memTotal > 0);
    }
  });

  t('Sandbox.kill of a missing id; getInfo of one is SandboxNotFoundError', async () => {
    assert.equal(await Sandbox.kill('0'.repeat(32)), false);
    assert.equal(await Sandbox.kill('not-an-id'), false);
    await assert.rejects(Sandbox.getInfo('0'.repeat(32)), SandboxNotFoundError);
  });

  t('a wrong API key is AuthenticationError', async () => {
    await assert.rejects(Sandbox.getInfo(sbx.sandboxId, { apiKey: `e2b_${'1'.repeat(40)}` }), AuthenticationError);
    await assert.rejects(Sandbox.list({ apiKey: 'not-a-key' }).nextItems(), AuthenticationError);
  });

  t("another tenant's key neither sees nor kills the sandbox", async () => {
    const other = await fx.mintKey('e2b-other');
    assert.deepEqual(await Sandbox.list({ apiKey: other }).nextItems(), []);
    await assert.rejects(Sandbox.getInfo(sbx.sandboxId, { apiKey: other }), SandboxNotFoundError);
    await assert.rejects(Sandbox.connect(sbx.sandboxId, { apiKey: other }), SandboxNotFoundError);
    assert.equal(await Sandbox.kill(sbx.sandboxId, { apiKey: other }), false);
    assert.equal((await sbx.getInfo()).state, 'running', 'the owner still has it');
  });

  t('sandbox.kill() is true, and the sandbox is gone (getInfo: not found, kill again: false)', async () => {
    assert.equal(await sbx.kill(), true);
    await assert.rejects(sbx.getInfo(), SandboxNotFoundError);
    assert.equal(await Sandbox.kill(sbx.sandboxId), false);
    assert.deepEqual(await fx.daemon.client.list(), []);
  });

  t("@e2b/code-interpreter's Sandbox: create (template base), getInfo, list, kill; its default template is a clear not-found", async () => {
    const ci = await CodeInterpreter.create('base', { metadata: { suite: run, role: 'ci' } });
    fx.track(ci.sandboxId);
    assert.equal((await ci.getInfo()).metadata.role, 'ci');
    assert.deepEqual((await CodeInterpreter.list({ query: { metadata: { suite: run, role: 'ci' } } }).nextItems()).map((s) => s.sandboxId), [ci.sandboxId]);
    assert.equal(await ci.kill(), true);
    await assert.rejects(CodeInterpreter.create(), /code-interpreter-v1/);
  });
});
