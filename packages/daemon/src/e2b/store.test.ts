import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { E2bStore } from './store.js';

test('E2bStore keeps metadata, template and token per sandbox; ensure() makes a row once; prune drops rows of gone sandboxes', () => {
  const s = new E2bStore(new Database(':memory:'));
  s.put({ sandboxId: 'sb-a', metadata: { k: 'v' }, templateId: 'base', accessToken: 't1' });
  assert.deepEqual(s.get('sb-a'), { sandboxId: 'sb-a', metadata: { k: 'v' }, templateId: 'base', accessToken: 't1' });
  const b = s.ensure('sb-b', 'py');
  assert.equal(b.templateId, 'py');
  assert.match(b.accessToken, /^[0-9a-f]{64}$/);
  assert.deepEqual(s.ensure('sb-b', 'other'), b, 'ensure keeps an existing row');
  assert.equal(s.prune(new Set(['sb-b'])), 1);
  assert.equal(s.get('sb-a'), null);
  assert.deepEqual(s.get('sb-b'), b);
});
