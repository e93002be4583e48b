import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AutoPauseTimers, autoPauseDue, type AutoPauseHost, type Clock } from './auto-pause.js';
import type { SandboxRecord } from '../sandbox/types.js';

/** A clock whose time moves only when the test says so. */
class FakeClock implements Clock {
  t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  now = (): number => this.t;
  setTimeout = (fn: () => void, ms: number): unknown => {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  };
  clearTimeout = (h: unknown): void => void this.timers.delete(h as number);
  /** Moves time forward, firing due timers in order (and letting their promises settle). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      const next = [...this.timers.entries()].filter(([, v]) => v.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
      for (let i = 0; i < 10; i++) await Promise.resolve();
    }
    this.t = end;
  }
  get pending(): number {
    return this.timers.size;
  }
}

const rec = (extra: Partial<SandboxRecord> = {}, autoPauseMs = 10_000): SandboxRecord => ({
  id: 'sb-1',
  state: 'running',
  spec: { memoryMiB: 1024, vcpus: 2, diskGiB: 10, timeoutMs: 0, autoPauseMs, env: {}, labels: {}, template: null },
  imageHash: null,
  step: null,
  vm: null,
  error: null,
  createdAt: 0,
  updatedAt: 0,
  readyAt: 0,
  expiresAt: null,
  pool: null,
  ...extra,
});

function setup(r: SandboxRecord) {
  const clock = new FakeClock();
  const state = { rec: r as SandboxRecord | null, activity: null as number | null, busy: false, pauses: [] as Array<{ at: number; idleMs: number }>, answer: true as boolean | Error };
  const host: AutoPauseHost = {
    record: () => state.rec,
    lastActivityAt: () => state.activity,
    busy: () => state.busy,
    pause: async (_id, idleMs) => {
      if (state.answer instanceof Error) throw state.answer;
      if (state.answer) state.pauses.push({ at: clock.t, idleMs });
      return state.answer;
    },
    error: () => undefined,
  };
  return { clock, state, timers: new AutoPauseTimers(host, clock, 1000) };
}

test('auto-pause: due autoPauseMs after the later of ready and the last activity; never for a pool member, a paused sandbox or 0', () => {
  assert.equal(autoPauseDue(rec({ readyAt: 500 }), null), 10_500);
  assert.equal(autoPauseDue(rec({ readyAt: 500 }), 7000), 17_000);
  assert.equal(autoPauseDue(rec({ readyAt: 500 }), 100), 10_500, 'activity before ready does not count');
  assert.equal(autoPauseDue(rec({}, 0), null), null);
  assert.equal(autoPauseDue(rec({ pool: 'default' }), null), null);
  assert.equal(autoPauseDue(rec({ state: 'paused' }), null), null);
});

test('auto-pause: an idle sandbox pauses when due; activity moves the due time without re-arming on every call', async () => {
  const { clock, state, timers } = setup(rec());
  timers.arm('sb-1');
  await clock.advance(6000);
  state.activity = 6000; // an exec at t=6s
  await clock.advance(4000); // t=10s: the timer fires, sees the activity, sleeps until 16s
  assert.deepEqual(state.pauses, []);
  assert.ok(timers.armed('sb-1'));
  await clock.advance(5999);
  assert.deepEqual(state.pauses, []);
  await clock.advance(1);
  assert.deepEqual(state.pauses, [{ at: 16_000, idleMs: 10_000 }]);
  assert.equal(clock.pending, 0, 'nothing left armed after the pause');
});

test('auto-pause: a busy sandbox (a call holds it) is looked at again every busyRetryMs and paused once free', async () => {
  const { clock, state, timers } = setup(rec());
  timers.arm('sb-1');
  state.busy = true;
  await clock.advance(12_000);
  assert.deepEqual(state.pauses, []);
  assert.ok(timers.armed('sb-1'), 'still watching');
  state.busy = false;
  state.activity = 12_000; // the hold's end counts as activity
  await clock.advance(9999);
  assert.deepEqual(state.pauses, []);
  await clock.advance(1);
  assert.deepEqual(state.pauses, [{ at: 22_000, idleMs: 10_000 }]);
});

test('auto-pause: a pause that declines or fails is retried later, never in a tight loop; clear and a record gone stop it', async () => {
  const { clock, state, timers } = setup(rec());
  state.answer = false;
  timers.arm('sb-1');
  await clock.advance(10_000);
  assert.ok(timers.armed('sb-1'));
  await clock.advance(999);
  state.answer = new Error('qmp failed');
  await clock.advance(1);
  assert.ok(timers.armed('sb-1'), 'retried after a failure');
  state.answer = true;
  await clock.advance(10_000);
  assert.equal(state.pauses.length, 1, 'retried one idle period after the failure');
  timers.arm('sb-1');
  state.rec = null;
  await clock.advance(60_000);
  assert.equal(state.pauses.length, 1);
  state.rec = rec();
  timers.arm('sb-1');
  timers.clear('sb-1');
  await clock.advance(60_000);
  assert.equal(state.pauses.length, 1);
  assert.equal(clock.pending, 0);
});
