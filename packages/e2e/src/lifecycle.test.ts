/**
 * Lifecycle with real VMs: timeouts (and extending one), capacity refusals, a VM killed, a guest
 * kernel panic and a guest poweroff, kilnd SIGKILLed after every creation step, and a storm of
 * creates and destroys, each ending with nothing of any sandbox left on the host.
 */
import { after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonFixture, integrationSkipReason } from './harness.js';
import { fdCount, leftovers, waitFor } from './lifecycle-leftovers.js';

const skip = integrationSkipReason();
type ApiErr = { code?: string; status?: number; message: string };

async function expectError(p: Promise<unknown>): Promise<ApiErr> {
  try {
    await p;
  } catch (err) {
    return err as ApiErr;
  }
  throw new Error('expected the call to fail');
}

const runDirs = (fx: DaemonFixture): string[] => readdirSync(join(fx.stateDir, 'sandboxes'));

describe('lifecycle: timeouts, crashes, capacity, gc', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('lifecycle');
  after(async () => fx.close());

  fx.test('timeout, extend, capacity, SIGKILL of QEMU, guest panic, guest poweroff, gc', async () => {
    await fx.start({ KILN_MAX_SANDBOXES: '4', KILN_GC_INTERVAL_MS: '0', KILN_HEARTBEAT_INTERVAL_MS: '1000', KILN_HEARTBEAT_TIMEOUT_MS: '4000', KILN_HEARTBEAT_GRACE_MS: '10000' });

    // Over host memory (this host × 1.5): refused at once, nothing created.
    let t0 = Date.now();
    const mem = await expectError(fx.client.create({ memoryMiB: 65536 }));
    assert.equal(mem.code, 'MEMORY_EXHAUSTED');
    assert.equal(mem.status, 503);
    assert.match(mem.message, /overcommit host memory/);
    assert.ok(Date.now() - t0 < 1000, `refused in ${Date.now() - t0} ms`);
    assert.deepEqual(runDirs(fx), []);

    const [b, c, d, e] = await Promise.all([fx.client.create({ timeoutMs: 0 }), fx.client.create({}), fx.client.create({}), fx.client.create({})]);
    assert.ok(b && c && d && e);
    for (const s of [b, c, d, e]) assert.equal(s.state, 'running', `${s.id}: ${JSON.stringify(s.error)}`);
    const ready = (await fx.client.events(c.id)).find((x) => x.type === 'ready')?.data;
    const cold = (await fx.client.events(c.id)).find((x) => x.type === 'cold-boot')?.data;
    process.stderr.write(`# 4 concurrent creates: ${JSON.stringify(ready)}${cold ? ` cold boot: ${JSON.stringify(cold)}` : ' (restored from the template)'}\n`);

    // A fifth is over maxSandboxes (4): 429 with the reason, fast, and nothing new on the host.
    t0 = Date.now();
    const over = await expectError(fx.client.create({}));
    assert.equal(over.code, 'CAPACITY_EXCEEDED');
    assert.equal(over.status, 429);
    assert.match(over.message, /maxSandboxes 4/);
    assert.ok(Date.now() - t0 < 1000, `refused in ${Date.now() - t0} ms`);
    process.stderr.write(`# capacity refusal in ${Date.now() - t0} ms\n`);
    assert.equal((await fx.client.list()).length, 4);
    assert.equal(runDirs(fx).length, 4);
    assert.equal(fx.vmmProcesses().length, 4);

    // SIGKILL of c's QEMU: failed within a few seconds, with the reason, nothing left.
    t0 = Date.now();
    process.kill(c.vm?.pid ?? -1, 'SIGKILL');
    const cf = await waitFor('c failed', async () => ((await fx.client.get(c.id)).state === 'failed' ? fx.client.get(c.id) : null), 5000);
    const cMs = Date.now() - t0;
    assert.equal(cf.error?.code, 'VM_EXITED');
    // QEMU's own exit status when kilnd is its parent; through the VMM jail's wrapper, the wrapper's.
    assert.match(cf.error?.message ?? '', /killed by SIGKILL|exited with code/);
    await waitFor('c reclaimed', () => leftovers(fx.stateDir, c.id).length === 0, 5000);

    // A failed sandbox holds nothing, so there is room again: a gets a 20 s timeout at creation;
    // b is set to expire 20 s from now too, and is extended before that.
    const a = await fx.client.create({ timeoutMs: 20_000 });
    const bSet = await fx.cli(['timeout', b.id, '20s']);
    assert.equal(bSet.code, 0, bSet.stderr);
    const bDeadline = Date.parse((await fx.client.get(b.id)).expiresAt ?? '');

    // Extend b well before its deadline: it now expires two minutes from now.
    assert.ok(Date.now() < bDeadline - 2000, 'b extended before its deadline');
    const ext = await fx.cli(['timeout', b.id, '2m']);
    assert.equal(ext.code, 0, ext.stderr);
    assert.ok(Date.parse((await fx.client.get(b.id)).expiresAt ?? '') > Date.now() + 100_000);

    // Guest kernel panic in d, guest poweroff in e: the same, each with its own reason.
    t0 = Date.now();
    void fx.sh(d.id, 'echo c > /proc/sysrq-trigger').catch(() => undefined);
    void fx.sh(e.id, 'poweroff').catch(() => undefined);
    const df = await waitFor('d failed', async () => ((await fx.client.get(d.id)).state === 'failed' ? fx.client.get(d.id) : null), 15_000);
    const ef = await waitFor('e failed', async () => ((await fx.client.get(e.id)).state === 'failed' ? fx.client.get(e.id) : null), 15_000);
    const deMs = Date.now() - t0;
    assert.equal(df.error?.code, 'GUEST_PANIC', df.error?.message);
    assert.equal(ef.error?.code, 'GUEST_POWEROFF', ef.error?.message);
    for (const s of [d, e]) await waitFor(`${s.id} reclaimed`, () => leftovers(fx.stateDir, s.id).length === 0, 5000);
    process.stderr.write(`# SIGKILL noticed in ${cMs} ms; panic + poweroff both failed within ${deMs} ms\n`);

    // a's 20 s timeout: gone, with everything it had, shortly after it expires.
    const expiresAt = Date.parse(a.expiresAt ?? '');
    await waitFor('a destroyed', async () => (await fx.client.get(a.id).then(() => false, (err: ApiErr) => err.code === 'SANDBOX_NOT_FOUND')), Math.max(0, expiresAt - Date.now()) + 10_000, 200);
    const lateMs = Date.now() - expiresAt;
    process.stderr.write(`# 20 s timeout: destroyed ${lateMs} ms after expiry\n`);
    assert.ok(lateMs < 5000, `destroyed ${lateMs} ms after expiry`);
    assert.deepEqual(leftovers(fx.stateDir, a.id), []);
    // b, extended, lives on past its old deadline and works.
    await waitFor('b past its old deadline', () => Date.now() > bDeadline + 3000, 30_000, 200);
    assert.equal((await fx.client.get(b.id)).state, 'running');
    assert.equal((await fx.sh(b.id, 'echo alive')).out, 'alive\n');

    // A guest whose agent stops answering (SIGSTOPped here): failed by the heartbeat after its grace period.
    t0 = Date.now();
    void fx.sh(b.id, 'kill -STOP $(pgrep -f "kiln-agent[.]cjs")').catch(() => undefined);
    const bf = await waitFor('b failed by the heartbeat', async () => ((await fx.client.get(b.id)).state === 'failed' ? fx.client.get(b.id) : null), 30_000, 250);
    assert.equal(bf.error?.code, 'GUEST_UNRESPONSIVE', bf.error?.message);
    await waitFor('b reclaimed', () => leftovers(fx.stateDir, b.id).length === 0, 5000);
    process.stderr.write(`# heartbeat: silent guest failed after ${Date.now() - t0} ms (grace 10000 ms)\n`);

    // Host-wide events name every cause; per-sandbox events outlive the sandbox.
    const host = await fx.cli(['events', '--json']);
    assert.equal(host.code, 0, host.stderr);
    const evs = JSON.parse(host.stdout.toString()) as Array<{ sandboxId: string; type: string; data: Record<string, unknown> }>;
    assert.ok(evs.some((x) => x.sandboxId === a.id && x.type === 'timeout'));
    assert.ok(evs.some((x) => x.sandboxId === b.id && x.type === 'timeout-set'));
    assert.ok(evs.some((x) => x.sandboxId === c.id && x.type === 'state' && x.data.state === 'failed'));
    const ae = await fx.cli(['events', a.id]);
    assert.equal(ae.code, 0, ae.stderr);
    assert.match(ae.stdout.toString(), /destroyed/);

    // kiln gc: an orphaned run dir (no row) is removed and reported.
    mkdirSync(join(fx.stateDir, 'sandboxes', 'sb-0123456789ab'));
    writeFileSync(join(fx.stateDir, 'sandboxes', 'sb-0123456789ab', 'scratch.img'), 'x');
    const gc = await fx.cli(['gc']);
    assert.equal(gc.code, 0, gc.stderr);
    assert.match(gc.stdout.toString(), /removed run-dir sb-0123456789ab/);
    assert.deepEqual(leftovers(fx.stateDir, 'sb-0123456789ab'), []);

    for (const s of [b, c, d, e]) await fx.client.destroy(s.id);
    assert.deepEqual(runDirs(fx), []);
    assert.equal(fx.vmmProcesses().length, 0);
  });

  fx.test('a storm of 50 creates and destroys at concurrency 4 ends clean, fds back to their start', async () => {
    // Independent of the test before: whatever it left is removed first.
    for (const s of await fx.client.list()) await fx.client.destroy(s.id).catch(() => undefined);
    const pid = fx.pid ?? -1;
    const fdStart = fdCount(pid);
    const ids = new Set<string>();
    const outcomes: string[] = [];
    const settle = async (what: string, p: Promise<unknown>): Promise<void> => {
      try {
        await p;
        outcomes.push(`${what}:ok`);
      } catch (err) {
        const code = (err as ApiErr).code ?? 'UNCODED';
        outcomes.push(`${what}:${code}`);
        assert.ok((err as ApiErr).code, `uncoded error in ${what}: ${(err as Error).message}`);
      }
    };
    const one = async (i: number): Promise<void> => {
      const mode = i % 3;
      if (mode === 0) {
        // create, then two destroys at once
        const sb = await fx.client.create({});
        ids.add(sb.id);
        await Promise.all([settle('destroy', fx.client.destroy(sb.id)), settle('destroy2', fx.client.destroy(sb.id))]);
      } else if (mode === 1) {
        // destroy right after the create is accepted (it races every creation step), twice
        const sb = await fx.client.create({}, false);
        ids.add(sb.id);
        await new Promise((r) => setTimeout(r, (i * 137) % 900));
        await Promise.all([settle('destroy', fx.client.destroy(sb.id)), settle('destroy2', fx.client.destroy(sb.id))]);
      } else {
        // a waiting create with a destroy racing it
        const sb = await fx.client.create({}, false);
        ids.add(sb.id);
        const final = async (): Promise<void> => {
          for (;;) {
            const s = await fx.client.get(sb.id).catch((err: ApiErr) => {
              if (err.code === 'SANDBOX_NOT_FOUND') return null;
              throw err;
            });
            if (s === null || s.state !== 'creating') return;
            await new Promise((r) => setTimeout(r, 100));
          }
        };
        const late = new Promise((r) => setTimeout(r, 500 + ((i * 211) % 1500))).then(() => fx.client.destroy(sb.id));
        await Promise.all([settle('create', final()), settle('destroy', late)]);
      }
    };
    const t0 = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < 50) await one(next++);
      }),
    );
    const stormMs = Date.now() - t0;
    assert.equal(ids.size, 50);
    // Every destroy ended: done, or not found because its twin finished first.
    for (const o of outcomes) assert.match(o, /:(ok|SANDBOX_NOT_FOUND)$/, o);
    assert.deepEqual(await fx.client.list(), []);
    for (const id of ids) assert.deepEqual(leftovers(fx.stateDir, id), [], id);
    assert.deepEqual(runDirs(fx), []);
    assert.equal(fx.vmmProcesses().length, 0);
    const fdEnd = await waitFor('fds back', () => (fdCount(pid) <= fdStart ? fdCount(pid) : null), 10_000).catch(() => fdCount(pid));
    process.stderr.write(`# storm: 50 sandboxes in ${stormMs} ms; kilnd fds ${fdStart} → ${fdEnd}\n`);
    assert.ok(fdEnd <= fdStart, `kilnd fds ${fdStart} → ${fdEnd}`);
  });
});

describe('lifecycle: kilnd SIGKILLed after each creation step', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('crashsteps');
  after(async () => fx.close());

  fx.test('restart leaves a working sandbox or nothing at all', async () => {
    await fx.start();
    const probe = await fx.client.create({});
    const steps = (await fx.client.events(probe.id)).filter((x) => x.type === 'step').map((x) => String(x.data.step));
    await fx.client.destroy(probe.id);
    await fx.stop();
    assert.ok(steps.length >= 8, `steps: ${steps.join(',')}`);
    const report: string[] = [];
    for (const step of steps) {
      await fx.start({ KILN_CRASH_AFTER_STEP: step });
      await fx.client.create({}).catch(() => undefined); // kilnd dies mid-request
      await waitFor(`kilnd to die after ${step}`, () => fx.client.call('GET', '/v1/health').then(() => false, () => true), 120_000, 50);
      await fx.start();
      const all = await fx.client.list();
      assert.equal(all.length, 1, `after ${step}: ${JSON.stringify(all)}`);
      const sb = all[0];
      assert.ok(sb);
      if (sb.state === 'running') {
        assert.equal((await fx.sh(sb.id, 'echo ok')).out, 'ok\n', `after ${step}`);
      } else {
        assert.equal(sb.state, 'failed', `after ${step}`);
        assert.deepEqual(leftovers(fx.stateDir, sb.id), [], `after ${step}`);
      }
      report.push(`${step}→${sb.state}`);
      await fx.client.destroy(sb.id);
      assert.deepEqual(leftovers(fx.stateDir, sb.id), [], `after ${step}`);
      assert.deepEqual(runDirs(fx), [], `after ${step}`);
      assert.equal(fx.vmmProcesses().length, 0, `after ${step}`);
      await fx.stop();
    }
    process.stderr.write(`# crash after each step: ${report.join(' ')}\n`);
  });
});
