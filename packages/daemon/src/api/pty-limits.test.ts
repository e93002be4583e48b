import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PTY_LIMITS as contract } from '@kiln/contract';
import { PTY_LIMITS as protocol } from '@kiln/protocol';

test("the API's terminal size bounds are the guest protocol's", () => {
  assert.deepEqual(contract, protocol);
});
