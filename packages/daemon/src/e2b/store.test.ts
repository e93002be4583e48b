import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { e2bPorts, E2bStore } from './store.js';

test('E2bStore keeps metadata, template and token per sandbox; ensure() makes a row once; prune drops rows of gone sandboxes', () => {
  const s = new E2bStore(new Database(':memory:'));
  s.put({ sandboxId: 'sb-a', metadata: { k: 'v' }, templateId: 'base', accessToken: 't1' });
  assert.deepEqual(s.get('sb-a'), { sandboxId: 'sb-a', metadata: { k: 'v' }, templateId: 'base', accessToken: 't1', onTimeout: 'kill', autoResume: false, timeoutS: 0, endAt: null, publicTraffic: false, viaE2b: false });
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

test('e2bPorts: a row made by an E2B create opens its ports (public unless allowPublicTraffic false); a row ensure() made for a kiln sandbox does not', () => {
  const store = new E2bStore(new Database(':memory:'));
  store.put({ sandboxId: 'sb-1', metadata: {}, templateId: 'base', accessToken: 't1', viaE2b: true, publicTraffic: true });
  store.put({ sandboxId: 'sb-2', metadata: {}, templateId: 'base', accessToken: 't2', viaE2b: true, publicTraffic: false });
  assert.equal(e2bPorts(store.get('sb-1')), 'public');
  assert.equal(e2bPorts(store.get('sb-2')), 'private');
  assert.equal(e2bPorts(store.ensure('sb-3', 'base')), null);
  assert.equal(e2bPorts(store.get('sb-missing')), null);
});
