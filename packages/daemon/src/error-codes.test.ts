import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { WireErrorCode } from '@kiln/protocol';
import { ERROR_CODES, isErrorCode, SANDBOX_FAILURE_CODES } from '@kiln/contract';
import { KilnError } from './errors.js';
import { fromGuestError } from './api/guest-errors.js';
import { sourceFiles } from './testing/import-graph.js';

const src = resolve(import.meta.dirname, '../src');
const sources = sourceFiles(src).map((f) => ({ f, text: readFileSync(f, 'utf8') }));

test('every code the sources raise (new KilnError, toKilnError, a literal error body) is in the registry', () => {
  const missing = new Set<string>();
  let seen = 0;
  for (const { f, text } of sources) {
    for (const m of text.matchAll(/new KilnError\(\s*'([A-Z0-9_]+)'|toKilnError\([^)]*?,\s*'([A-Z0-9_]+)'\)|error: \{ code: '([A-Z0-9_]+)'/g)) {
      seen++;
      const code = (m[1] ?? m[2] ?? m[3]) as string;
      if (!isErrorCode(code)) missing.add(`${code} (${f.slice(src.length + 1)})`);
    }
  }
  assert.ok(seen > 50, `found ${seen} raised codes`);
  assert.deepEqual([...missing], []);
});

test("every code a sandbox's failure record carries is a registered failure or error code", () => {
  const missing = new Set<string>();
  for (const { f, text } of sources) {
    for (const m of text.matchAll(/(?:fail\([^,]+,|rec\.error =|return) \{ code: '([A-Z0-9_]+)'/g)) {
      const code = m[1] as string;
      if (!Object.hasOwn(SANDBOX_FAILURE_CODES, code) && !isErrorCode(code)) missing.add(`${code} (${f.slice(src.length + 1)})`);
    }
  }
  assert.deepEqual([...missing], []);
});

test('every guest wire code maps onto a registered GUEST_ code; an unknown one onto GUEST_INTERNAL', () => {
  for (const code of Object.values(WireErrorCode)) {
    const e = fromGuestError(Object.assign(new Error('x'), { code }));
    assert.ok(isErrorCode(e.code), `${code} → ${e.code}`);
    assert.equal(e.status, ERROR_CODES[e.code as keyof typeof ERROR_CODES].status);
  }
  for (const code of ['CHANNEL_CLOSED', 'PROTOCOL_ERROR']) assert.equal(fromGuestError(Object.assign(new Error('x'), { code })).code, `GUEST_${code}`);
  const odd = fromGuestError(Object.assign(new Error('boom'), { code: 'SOMETHING_NEW' }));
  assert.equal(odd.code, 'GUEST_INTERNAL');
  assert.match(odd.message, /SOMETHING_NEW: boom/);
});

test("a KilnError's status defaults to its code's in the registry", () => {
  assert.equal(new KilnError('TEMPLATE_NOT_FOUND', 'x').status, 404);
  assert.equal(new KilnError('CAPACITY_EXCEEDED', 'x').status, 429);
  assert.equal(new KilnError('NETWORK_NOT_FOUND', 'x', { status: 409 }).status, 409);
  for (const [code, { status, meaning }] of Object.entries(ERROR_CODES)) {
    assert.ok(status >= 400 && status < 600, code);
    assert.ok(meaning.length > 10, code);
  }
});
