import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cookieToken, loadProxySecret, signGrant, takeSignature, verifyGrant, withoutOwnCookie } from './signing.js';

const secret = Buffer.alloc(32, 7);
const ID = `sb-${'0f'.repeat(16)}`;
const NOW = 1_800_000_000;

test('a signed grant verifies for its sandbox and port until it expires', () => {
  const t = signGrant(secret, { sandboxId: ID, port: 3000, exp: NOW + 60 });
  assert.deepEqual(verifyGrant(secret, t, { sandboxId: ID, port: 3000 }, NOW), { ok: true, grant: { sandboxId: ID, port: 3000, exp: NOW + 60 } });
  assert.deepEqual(verifyGrant(secret, t, { sandboxId: ID, port: 3000 }, NOW + 61), { ok: false, reason: 'expired' });
  assert.deepEqual(verifyGrant(secret, t, { sandboxId: ID, port: 3001 }, NOW), { ok: false, reason: 'other-port' });
  assert.deepEqual(verifyGrant(secret, t, { sandboxId: `sb-${'1f'.repeat(16)}`, port: 3000 }, NOW), { ok: false, reason: 'other-sandbox' });
  const all = signGrant(secret, { sandboxId: ID, port: null, exp: NOW + 60 });
  assert.equal(verifyGrant(secret, all, { sandboxId: ID, port: 1 }, NOW).ok, true);
});

test('a tampered payload, another secret or garbage is refused', () => {
  const t = signGrant(secret, { sandboxId: ID, port: 3000, exp: NOW + 60 });
  const [, mac] = t.split('.');
  const forged = `${Buffer.from(`${ID}:*:${NOW + 9999}`).toString('base64url')}.${mac}`;
  assert.deepEqual(verifyGrant(secret, forged, { sandboxId: ID, port: 3000 }, NOW), { ok: false, reason: 'bad-signature' });
  assert.deepEqual(verifyGrant(Buffer.alloc(32, 8), t, { sandboxId: ID, port: 3000 }, NOW), { ok: false, reason: 'bad-signature' });
  for (const g of ['', 'x', `${t}x`, 'a.b']) assert.equal(verifyGrant(secret, g, { sandboxId: ID, port: 3000 }, NOW).ok, false);
});

test('the signature is taken out of the query; the cookie is read and never forwarded', () => {
  assert.deepEqual(takeSignature('/a?x=1&kiln_sig=T&y=2'), { token: 'T', path: '/a?x=1&y=2' });
  assert.deepEqual(takeSignature('/a?kiln_sig=T'), { token: 'T', path: '/a' });
  assert.deepEqual(takeSignature('/a?x=1'), { token: null, path: '/a?x=1' });
  assert.equal(cookieToken('a=1; kiln_proxy_sig=abc.def; b=2'), 'abc.def');
  assert.equal(cookieToken('a=1'), null);
  assert.equal(withoutOwnCookie('a=1; kiln_proxy_sig=abc; b=2'), 'a=1; b=2');
  assert.equal(withoutOwnCookie('kiln_proxy_sig=abc'), undefined);
});

test('the secret is made once, 0600, and kept', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-proxy-secret-'));
  try {
    const a = loadProxySecret(dir);
    assert.equal(a.length, 32);
    assert.equal(statSync(join(dir, 'proxy-secret')).mode & 0o777, 0o600);
    assert.deepEqual(loadProxySecret(dir), a);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
