import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveCommand, spawnPlan } from './spawn-as.js';
import type { User } from './users.js';

const user: User = { name: 'user', uid: 1000, gid: 1000, home: '/home/user', shell: '/bin/bash', fromPasswd: true };
const ctx = { path: '/usr/bin:/bin', cwd: '/', setpriv: '/bin/sh' }; // any executable stands in for setpriv
const root = process.getuid?.() === 0;

test('no user asked for: the command as it is, with the agent ids', () => {
  assert.deepEqual(spawnPlan('sh', ['-c', 'id'], user, undefined, ctx), { file: 'sh', args: ['-c', 'id'], ids: {} });
});

test('as a passwd account, from root: through setpriv --init-groups (keeps supplementary groups such as docker)', { skip: root ? false : 'needs root' }, () => {
  assert.deepEqual(spawnPlan('sh', ['-c', 'id'], user, 'user', ctx), {
    file: '/bin/sh',
    args: ['--reuid=1000', '--regid=1000', '--init-groups', '--', 'sh', '-c', 'id'],
    ids: {},
  });
});

test('a command that does not resolve, a numeric uid without an entry, or no setpriv: spawn uid/gid as before', () => {
  const ids = { uid: 1000, gid: 1000 };
  assert.deepEqual(spawnPlan('no-such-command-kiln', [], user, 'user', ctx).ids, ids);
  assert.deepEqual(spawnPlan('sh', [], { ...user, fromPasswd: false }, '1000', ctx).ids, ids);
  assert.deepEqual(spawnPlan('sh', [], user, 'user', { ...ctx, setpriv: '/nonexistent/setpriv' }).ids, ids);
});

test('resolveCommand finds a command on PATH, by path, or not at all', () => {
  assert.equal(resolveCommand('sh', '/nonexistent:/bin', '/'), '/bin/sh');
  assert.equal(resolveCommand('/bin/sh', '', '/'), '/bin/sh');
  assert.equal(resolveCommand('bin/sh', '', '/'), 'bin/sh');
  assert.equal(resolveCommand('no-such-command-kiln', '/bin:/usr/bin', '/'), null);
});
