import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { E2bStore } from './store.js';

test('E2bStore keeps metadata, template and token per sandbox; ensure() makes a row once; prune drops rows of gone sandboxes', () => {
  const s = new E2bStore(new Database(':memory:'));
  s.put({ sandboxId: 'sb-a', metadata: { k: 'v' }, templateId: 'base', accessToken: 't1' });
  assert.deepEqual(s.get('sb-a'), { sandboxId: 'sb-a', metadata: { k: 'v' }, templateId: 'base', accessToken: 't1', onTimeout: 'kill', autoResume: false, timeoutS: 0, endAt: null });
  s.put({ sandboxId: 'sb-p', metadata: {}, templateId: 'base', accessToken: 't2', onTimeout: 'pause', autoResume: true, timeoutS: 30, endAt: null });
  assert.deepEqual(s.armed(), []);
  s.setEndAt('sb-p', 123);
  assert.deepEqual(s.armed().map((r) => [r.sandboxId, r.onTimeout, r.autoResume, r.timeoutS, r.endAt]), [['sb-p', 'pause', true, 30, 123]]);
  const b = s.ensure('sb-b', 'py');
  assert.equal(b.templateId, 'py');
  assert.match(b.accessToken, /^[0-9a-f]{64}$/);
  assert.deepEqual(s.ensure('sb-b', 'other'), b, 'ensure keeps an existing row');
  assert.equal(s.prune(new Set(['sb-b'])), 2);
  assert.equal(s.get('sb-a'), null);
  assert.deepEqual(s.get('sb-b'), b);
});
