import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkLauncher, checkNamespaces } from './checks.js';
import { LAUNCHER_PATH } from '../vmm/jail.js';

test('checkLauncher: the built launcher runs here', { skip: existsSync(LAUNCHER_PATH) ? false : `${LAUNCHER_PATH} not built (npm run build)` }, () => {
  const r = checkLauncher();
  assert.equal(r.status, 'ok', r.detail);
  assert.equal(r.name, 'launcher');
  assert.ok(r.detail.includes(LAUNCHER_PATH));
});

test('checkLauncher: missing, not executable, or not the launcher: fail, with npm run build as the fix', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-doctor-'));
  try {
    const missing = checkLauncher(join(dir, 'kiln-vmm-launch'));
    assert.equal(missing.status, 'fail');
    assert.match(missing.detail, /no VMM launcher at .*kiln-vmm-launch/);
    assert.match(missing.fix ?? '', /^npm run build .*gcc and libc6-dev/);

    const plain = join(dir, 'plain');
    writeFileSync(plain, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    const notExec = checkLauncher(plain);
    assert.equal(notExec.status, 'fail');
    assert.match(notExec.detail, /is not executable/);
    assert.match(notExec.fix ?? '', /^npm run build/);

    assert.equal(checkLauncher(dir).status, 'fail'); // a directory

    // runs, but does not refuse an empty command line the way the launcher does
    const other = join(dir, 'other');
    writeFileSync(other, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const wrong = checkLauncher(other);
    assert.equal(wrong.status, 'fail');
    assert.match(wrong.detail, /does not run here \(status 0/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('checkNamespaces: kernel namespaces only, no util-linux tools', () => {
  const r = checkNamespaces();
  assert.doesNotMatch(`${r.detail} ${r.fix ?? ''}`, /unshare|setpriv|prlimit|pivot_root|util-linux/);
});
