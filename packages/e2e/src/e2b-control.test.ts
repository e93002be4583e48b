/**
 * kiln as a backend for the real `e2b` SDK (npm, the version in packages/e2e/package.json),
 * control plane: a test kilnd with a TCP listener, E2B-shaped keys from `kiln key create --e2b`,
 * and the SDK configured by the three variables only (E2B_API_URL, E2B_SANDBOX_URL, E2B_API_KEY).
 * Create with metadata and envs, getInfo, Sandbox.list with metadata filters and paging,
 * setTimeout, betaPause + connect resuming with files intact, kill (and of a missing id:
 * false), a wrong key (AuthenticationError), and tenancy (another tenant's key neither sees nor
 * kills the sandbox).
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { AuthenticationError, Sandbox, SandboxNotFoundError } from 'e2b';
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

  t('Sandbox.kill of a missing id is false; getInfo of one is SandboxNotFoundError', async () => {
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
});
