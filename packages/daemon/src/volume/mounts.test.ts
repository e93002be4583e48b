import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveVolumeMounts } from './service.js';
import { mountScript } from './guest-mount.js';

test('volume mounts: validated names and paths, no duplicates or overlaps, no system directories', () => {
  assert.deepEqual(resolveVolumeMounts([{ name: 'data', path: '/data/' }, { name: 'cache', path: '/home/user/cache', readOnly: true }]), [
    { name: 'data', path: '/data', readOnly: false },
    { name: 'cache', path: '/home/user/cache', readOnly: true },
  ]);
  for (const bad of [
    [{ name: 'Data', path: '/data' }],
    [{ name: 'data', path: 'data' }],
    [{ name: 'data', path: '/data/../etc' }],
    [{ name: 'data', path: '/' }],
    [{ name: 'data', path: '/etc' }],
    [{ name: 'data', path: '/usr/local/x' }],
    [{ name: 'data', path: "/data'x" }],
    [{ name: 'a', path: '/a' }, { name: 'a', path: '/b' }],
    [{ name: 'a', path: '/a' }, { name: 'b', path: '/a/b' }],
  ]) {
    assert.throws(() => resolveVolumeMounts(bad), /INVALID_ARGUMENT|invalid|must|cannot|twice|overlap/, JSON.stringify(bad));
  }
});

test('a read-only volume mounts ro,noload (no journal replay) and a writable one without', () => {
  assert.match(mountScript(2, '/data', true), /-o ro,noload[^\n]* "\$dev" '\/data'/);
  assert.match(mountScript(2, '/data', true), /\*:0:2:0\/block/);
  assert.doesNotMatch(mountScript(0, '/data', false), /ro,noload/);
});
