import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { envdAccess, fileSignature } from './envd-access.js';

const token = 'a'.repeat(64);

test("fileSignature is the SDK's: v1_ + base64(sha256(path:op:user:token[:exp])) without padding", () => {
  const raw = `/home/user/a.txt:read:user:${token}`;
  const want = `v1_${createHash('sha256').update(raw).digest('base64').replace(/=+$/, '')}`;
  assert.equal(fileSignature({ path: '/home/user/a.txt', operation: 'read', user: 'user', token, expiration: null }), want);
});

test('envd access: the token header, open health, signed /files (expiry checked), nothing else', () => {
  const ok = (m: string, u: string, h: Record<string, string> = {}, now?: number) => envdAccess(m, u, h, token, now).ok;
  assert.equal(ok('POST', '/process.Process/Start', { 'x-access-token': token }), true);
  assert.equal(ok('POST', '/process.Process/Start', { 'x-access-token': 'b'.repeat(64) }), false);
  assert.equal(ok('POST', '/process.Process/Start'), false);
  assert.equal(ok('GET', '/health'), true);
  assert.equal(ok('GET', '/files?path=a.txt'), false);
  const sig = fileSignature({ path: 'a.txt', operation: 'read', user: '', token, expiration: null });
  assert.equal(ok('GET', `/files?path=a.txt&signature=${encodeURIComponent(sig)}`), true);
  assert.equal(ok('POST', `/files?path=a.txt&signature=${encodeURIComponent(sig)}`), false, 'a read signature does not write');
  const exp = 2_000_000_000;
  const timed = fileSignature({ path: 'a.txt', operation: 'write', user: 'user', token, expiration: exp });
  const url = `/files?path=a.txt&username=user&signature=${encodeURIComponent(timed)}&signature_expiration=${exp}`;
  assert.equal(ok('POST', url, {}, exp * 1000 - 1), true);
  assert.equal(ok('POST', url, {}, exp * 1000 + 1), false);
});
