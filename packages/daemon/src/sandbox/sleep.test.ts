import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fakeHarness } from '../testing/harness.js';
import { sandboxView } from '../api/views.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await sleep(20);
}

async function harness() {
  const h = await fakeHarness();
  const calls = { pause: 0, resume: 0 };
  h.driver.pause = async () => void calls.pause++;
  h.driver.resume = async () => {
    calls.resume++;
    await sleep(30);
  };
  return { h, calls };
}

test('auto-pause: autoPauseMs is 0 or 1 s to 7 days, with an error naming the field', async () => {
  const h = await fakeHarness();
  try {
    await assert.rejects(h.manager.create({ autoPauseMs: 500 }), { code: 'INVALID_ARGUMENT', message: /autoPauseMs must be 0 \(never\) or an integer from 1000/ });
    await assert.rejects(h.manager.create({ autoPauseMs: 1.5e3 + 0.5 }), { code: 'INVALID_ARGUMENT', message: /autoPauseMs/ });
    const r = await h.app.inject({ method: 'POST', url: '/v1/sandboxes', payload: { autoPauseMs: -1 } });
    assert.equal(r.statusCode, 400);
    assert.match(r.body, /autoPauseMs/);
    const sb = await h.manager.create({ autoPauseMs: 0 });
    assert.equal(sb.spec.autoPauseMs, 0);
    assert.equal(sandboxView(sb).autoPauseMs, 0);
  } finally {
    await h.close();
  }
});

test('auto-pause: an idle sandbox pauses; a guest call wakes it (one resume for concurrent callers), with events and accounting', async () => {
  const { h, calls } = await harness();
  try {
    const sb = await h.manager.create({ autoPauseMs: 1000 });
    await until(() => h.manager.get(sb.id).state === 'paused');
    let rec = h.manager.get(sb.id);
    assert.equal(rec.pausedBy, 'auto');
    assert.equal(calls.pause, 1);
    assert.ok(h.store.events(sb.id).some((e) => e.type === 'auto-paused'));
    assert.equal(sandboxView(rec).pausedBy, 'auto');
    await sleep(100);
    const configuredBefore = h.agents[0]?.configured.length ?? 0;
    // An exec-like call, a file call and two wakes at once: one resume.
    const [a, b] = await Promise.all([h.manager.useAgent(sb.id, 'exec'), h.manager.useAgent(sb.id, 'files'), h.manager.wake(sb.id), h.manager.wake(sb.id)]);
    a.release();
    b.release();
    assert.equal(calls.resume, 1, 'concurrent wakes share one resume');
    rec = h.manager.get(sb.id);
    assert.equal(rec.state, 'running');
    assert.equal(rec.pausedBy, null);
    assert.ok((h.agents[0]?.configured.length ?? 0) > configuredBefore, 'the guest clock is set again');
    const woke = h.store.events(sb.id).filter((e) => e.type === 'woke');
    assert.equal(woke.length, 1);
    assert.ok((woke[0]?.data.pausedMs as number) >= 100);
    const v = sandboxView(rec);
    assert.ok(v.pausedSeconds !== undefined && v.pausedSeconds >= 0.1, `paused time counted (${v.pausedSeconds})`);
    assert.ok(v.runningSeconds !== undefined && v.runningSeconds >= 1, `running time counted (${v.runningSeconds})`);
    // Idle again: pauses again.
    await until(() => h.manager.get(sb.id).state === 'paused');
    assert.equal(calls.pause, 2);
  } finally {
    await h.close();
  }
});

test('auto-pause: a user pause is not woken by guest calls (INVALID_STATE, as before); a user resume of an auto-paused one works', async () => {
  const { h, calls } = await harness();
  try {
    const sb = await h.manager.create({ autoPauseMs: 0 });
    await h.manager.pause(sb.id);
    assert.equal(h.manager.get(sb.id).pausedBy, 'user');
    assert.equal((await h.manager.wake(sb.id)).state, 'paused');
    await assert.rejects(h.manager.useAgent(sb.id, 'exec'), { code: 'INVALID_STATE' });
    assert.equal(calls.resume, 0);
    await h.manager.resume(sb.id);
    const auto = await h.manager.create({ autoPauseMs: 1000 });
    await until(() => h.manager.get(auto.id).state === 'paused');
    await h.manager.resume(auto.id);
    assert.equal(h.manager.get(auto.id).state, 'running');
    await assert.rejects(h.manager.wake('sb-00000000000000000000000000000000'), { code: 'SANDBOX_NOT_FOUND' });
  } finally {
    await h.close();
  }
});

test('auto-pause: a call in progress (hold) keeps the sandbox awake; its end restarts the idle clock', async () => {
  const { h } = await harness();
  try {
    const sb = await h.manager.create({ autoPauseMs: 1000 });
    const release = h.manager.hold(sb.id);
    await sleep(2500);
    assert.equal(h.manager.get(sb.id).state, 'running', 'not paused while held');
    release();
    const freed = Date.now();
    await until(() => h.manager.get(sb.id).state === 'paused');
    assert.ok(Date.now() - freed >= 900, 'idle time counted from the end of the call');
  } finally {
    await h.close();
  }
});

test('auto-pause: the timeout clock stops while auto-paused and the deadline moves by the paused time on wake', async () => {
  const { h } = await harness();
  try {
    // The timeout is well after the auto-pause: a loaded machine must not let it win the race.
    const sb = await h.manager.create({ autoPauseMs: 1000, timeoutMs: 4000 });
    const expires0 = sb.expiresAt as number;
    await until(() => h.manager.get(sb.id).state === 'paused');
    const pausedAt = Date.now();
    await sleep(Math.max(0, expires0 - Date.now()) + 500); // past the original deadline
    assert.equal(h.manager.get(sb.id).state, 'paused', 'not destroyed by its timeout while auto-paused');
    const shown = Date.parse(sandboxView(h.manager.get(sb.id)).expiresAt as string);
    assert.ok(shown > Date.now(), 'the deadline shown stands still ahead');
    const woken = await h.manager.wake(sb.id);
    assert.ok((woken.expiresAt as number) >= expires0 + (Date.now() - pausedAt) - 200, 'deadline moved by the paused time');
    await until(() => !h.store.get(sb.id));
    assert.ok(h.store.events(sb.id).some((e) => e.type === 'timeout'), 'its timeout still ends it, later');
  } finally {
    await h.close();
  }
});

test('restart: paused sandboxes are adopted and stay paused (an auto-paused one still wakes; its timeout clock stays stopped)', async () => {
  const { h, calls } = await harness();
  try {
    const auto = await h.manager.create({ autoPauseMs: 1000, timeoutMs: 4000 });
    const user = await h.manager.create({});
    await h.manager.pause(user.id);
    await until(() => h.manager.get(auto.id).state === 'paused');
    await h.manager.shutdown();
    await sleep(Math.max(0, (auto.expiresAt as number) - Date.now()) + 500); // past auto's original deadline
    const m2 = h.mkManager();
    await m2.init();
    assert.equal(calls.resume, 2, 'each ran for its adoption check');
    assert.equal(m2.get(user.id).state, 'paused');
    assert.equal(m2.get(user.id).pausedBy, 'user');
    assert.equal(m2.get(auto.id).pausedBy, 'auto');
    const use = await m2.useAgent(auto.id, 'exec');
    use.release();
    assert.equal(m2.get(auto.id).state, 'running');
    await m2.destroy(auto.id);
    await m2.destroy(user.id);
    await m2.shutdown();
  } finally {
    await h.close();
  }
});
