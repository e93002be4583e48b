import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assertAction, assertTransition, canTransition } from './state-machine.js';

test('legal and illegal transitions', () => {
  assert.ok(canTransition('creating', 'running'));
  assert.ok(canTransition('running', 'stopping'));
  assert.ok(canTransition('failed', 'stopping'));
  assert.ok(!canTransition('destroyed', 'running'));
  assert.ok(!canTransition('running', 'creating'));
  assert.throws(() => assertTransition('sb-1', 'stopped', 'running'), { code: 'INVALID_TRANSITION' });
});

test('actions are refused in the wrong state with INVALID_STATE', () => {
  assert.throws(() => assertAction('sb-000000000000', 'creating', 'exec'), { code: 'INVALID_STATE', status: 409 });
  assert.throws(() => assertAction('sb-000000000000', 'failed', 'files'), { code: 'INVALID_STATE' });
  assert.doesNotThrow(() => assertAction('sb-000000000000', 'running', 'exec'));
  assert.doesNotThrow(() => assertAction('sb-000000000000', 'failed', 'destroy'));
});
