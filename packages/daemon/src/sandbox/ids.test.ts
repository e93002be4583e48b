import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hostKey, isSandboxId, newSandboxId } from './ids.js';
import { idHexFromName, netNames } from '../network/names.js';

test('sandbox ids carry 128 random bits; host names use a 12-hex host key, drawn again on a clash', () => {
  const id = newSandboxId();
  assert.match(id, /^sb-[0-9a-f]{32}$/);
  assert.ok(isSandboxId(id));
  assert.ok(isSandboxId('sb-0123456789ab'), "an older kilnd's ids are still accepted");
  assert.ok(!isSandboxId('sb-0123456789abc') && !isSandboxId(`sb-${'A'.repeat(32)}`));
  assert.equal(hostKey(id), id.slice(3, 15));
  assert.equal(hostKey('sb-0123456789ab'), '0123456789ab');
  const n = netNames(id);
  assert.equal(n.netns, `kiln-${hostKey(id)}`);
  assert.ok(n.tap.length <= 15 && n.vethUplink.length <= 15);
  assert.equal(idHexFromName(n.table), hostKey(id));
  // A clash with a known sandbox's host key is drawn again.
  const seen: string[] = [];
  const fresh = newSandboxId((k) => {
    seen.push(k);
    return seen.length < 3;
  });
  assert.equal(seen.length, 3);
  assert.equal(hostKey(fresh), seen[2]);
});
