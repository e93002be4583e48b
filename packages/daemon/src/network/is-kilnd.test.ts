import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKilnd } from './foreign-orphans.js';

test('a serving kilnd is recognised by its command line: kilnd [run], or the older kiln daemon; not its other commands nor the client', () => {
  const node = '/opt/kiln/node/bin/node';
  assert.ok(isKilnd([node, '/repo/packages/daemon/dist/kilnd.js', '--socket', '/tmp/s', '--state-dir', '/tmp/d']));
  assert.ok(isKilnd([node, '/repo/packages/daemon/dist/kilnd.js', 'run', '--state-dir', '/tmp/d']));
  assert.ok(isKilnd(['/usr/local/bin/kilnd']));
  assert.ok(isKilnd([node, '/repo/packages/cli/dist/main.js', 'daemon', '--state-dir', '/tmp/d']));
  assert.ok(!isKilnd([node, '/repo/packages/daemon/dist/kilnd.js', 'image', 'build']));
  assert.ok(!isKilnd([node, '/repo/packages/daemon/dist/kilnd.js', 'doctor']));
  assert.ok(!isKilnd([node, '/repo/packages/cli/dist/main.js', 'ls']));
  assert.ok(!isKilnd(['/usr/bin/vim', 'daemon.ts']));
});
