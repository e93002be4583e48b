import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFindRecords } from './entry-info.js';
import { endEvent } from './process-events.js';
import { resolvePath, userFromAuthorization, userFromQuery } from './user.js';

test('find records become EntryInfo: types, int64 size as a string, permission bits, owner, RFC 3339 mtime, symlink target', () => {
  const out = Buffer.from(
    'f\t13\t644\t-rw-r--r--\tuser\tuser\t1765000000.5000000000\t\t/home/user/a\tb.txt\0' +
      'd\t4096\t755\tdrwxr-xr-x\troot\troot\t1765000000.0\t\t/\0' +
      'l\t4\t777\tlrwxrwxrwx\tuser\tuser\t1765000000.0\t/etc\t/home/user/ln\0',
  );
  const [f, d, l] = parseFindRecords(out);
  assert.deepEqual(f, { name: 'a\tb.txt', type: 'FILE_TYPE_FILE', path: '/home/user/a\tb.txt', size: '13', mode: 0o644, permissions: '-rw-r--r--', owner: 'user', group: 'user', modifiedTime: '2025-12-06T05:46:40.500Z' });
  assert.equal(d?.type, 'FILE_TYPE_DIRECTORY');
  assert.equal(d?.name, '/');
  assert.equal(l?.type, 'FILE_TYPE_SYMLINK');
  assert.equal(l?.symlinkTarget, '/etc');
});

test('paths: relative and ~ resolve against the user\'s home; root\'s is /root', () => {
  assert.equal(resolvePath('a/b/../c', 'user'), '/home/user/a/c');
  assert.equal(resolvePath('~/x', 'root'), '/root/x');
  assert.equal(resolvePath('/tmp/', 'user'), '/tmp');
  assert.equal(resolvePath(undefined, 'user'), '/home/user');
});

test('users: Basic "<user>:" header or username query, default user', () => {
  assert.equal(userFromAuthorization(undefined), 'user');
  assert.equal(userFromAuthorization(`Basic ${Buffer.from('root:').toString('base64')}`), 'root');
  assert.equal(userFromQuery(null), 'user');
  assert.equal(userFromQuery('root'), 'root');
  assert.throws(() => userFromQuery('a b'), /invalid user/);
});

test('end events: exit code omitted when 0, error set otherwise, signals as envd words them', () => {
  assert.deepEqual(endEvent({ exitCode: 0, signal: null }), { exited: true, status: 'exit status 0' });
  assert.deepEqual(endEvent({ exitCode: 3, signal: null }), { exitCode: 3, error: 'exit status 3', exited: true, status: 'exit status 3' });
  assert.deepEqual(endEvent({ exitCode: null, signal: 'SIGKILL' }), { exitCode: -1, exited: false, status: 'signal: killed', error: 'signal: killed' });
});
