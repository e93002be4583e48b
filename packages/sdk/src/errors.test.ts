import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES, SANDBOX_FAILURE_CODES } from '@kiln/contract';
import { errorClassFor, fromWire, KilnError, knownErrorCodes, SandboxNotFoundError } from './index.js';

test('every code of the contract registry has its own error class, and no class names a code the registry lacks', () => {
  const registry = [...Object.keys(ERROR_CODES), ...Object.keys(SANDBOX_FAILURE_CODES)];
  for (const code of registry) {
    const cls = errorClassFor(code);
    assert.ok(cls, `no SDK error class for ${code} (run node packages/sdk/scripts/gen-errors.mjs)`);
    const e = new cls('m');
    assert.equal(e.code, code);
    assert.ok(e instanceof KilnError);
    assert.notEqual(cls, KilnError);
  }
  const clientOnly = ['DAEMON_UNREACHABLE', 'PROTOCOL_ERROR'];
  assert.deepEqual(knownErrorCodes().filter((c) => !registry.includes(c)).sort(), clientOnly.sort());
});

test('a wire error becomes the class of its code with status and details; unknown codes stay KilnError', () => {
  const e = fromWire(404, JSON.stringify({ error: { code: 'SANDBOX_NOT_FOUND', message: 'sandbox sb-1 not found', details: { id: 'sb-1' } } }));
  assert.ok(e instanceof SandboxNotFoundError);
  assert.equal(e.name, 'SandboxNotFoundError');
  assert.equal(e.status, 404);
  assert.deepEqual(e.details, { id: 'sb-1' });
  const u = fromWire(418, JSON.stringify({ error: { code: 'SOMETHING_NEW', message: 'x' } }));
  assert.equal(u.constructor, KilnError);
  assert.equal(u.code, 'SOMETHING_NEW');
  const t = fromWire(502, '<html>bad gateway</html>');
  assert.equal(t.code, 'HTTP_502');
});
