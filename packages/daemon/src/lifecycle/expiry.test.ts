import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { ExpiryTimers } from './expiry.js';

test('expiry: fires at the deadline, also one beyond setTimeout\'s range; re-arming or clearing replaces it', () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  try {
    const fired: string[] = [];
    const t = new ExpiryTimers((id) => fired.push(id));
    const DAY = 24 * 3600 * 1000;
    t.arm('far', 30 * DAY);
    t.arm('near', 1000);
    t.arm('moved', 1000);
    t.arm('moved', 5000);
    t.arm('gone', 1000);
    t.clear('gone');
    mock.timers.tick(1000);
    assert.deepEqual(fired, ['near']);
    mock.timers.tick(4000);
    assert.deepEqual(fired, ['near', 'moved']);
    mock.timers.tick(25 * DAY);
    assert.deepEqual(fired, ['near', 'moved'], 'not before its deadline (setTimeout caps at ~24.8 days)');
    mock.timers.tick(5 * DAY);
    assert.deepEqual(fired, ['near', 'moved', 'far']);
    t.arm('x', 10);
    t.clearAll();
    mock.timers.tick(100);
    assert.deepEqual(fired, ['near', 'moved', 'far']);
  } finally {
    mock.timers.reset();
  }
});
