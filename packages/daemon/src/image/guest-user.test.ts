import { strict as assert } from 'node:assert';
import { chown, cp, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { addGuestUser, withEntry, withMember } from './guest-user.js';
import { linkCopyTree } from './rootfs.js';

test('addGuestUser adds user (1000:1000, /home/user, bash) to a hard-link copy without touching the base layer', async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'kiln-guest-user-'));
  try {
    const base = join(tmp, 'base');
    await mkdir(join(base, 'etc/skel'), { recursive: true });
    await writeFile(join(base, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
    await writeFile(join(base, 'etc/group'), 'root:x:0:\nshadow:x:42:\ndocker:x:999:\n');
    await writeFile(join(base, 'etc/shadow'), 'root:*:20000:0:99999:7:::\n', { mode: 0o640 });
    await chown(join(base, 'etc/shadow'), 0, 42);
    await writeFile(join(base, 'etc/gshadow'), 'root:*::\n', { mode: 0o640 });
    await writeFile(join(base, 'etc/skel/.bashrc'), 'umask 022\n');
    const tree = join(tmp, 'tree');
    await linkCopyTree(base, tree);

    await addGuestUser(tree);

    assert.match(await readFile(join(tree, 'etc/passwd'), 'utf8'), /^user:x:1000:1000::\/home\/user:\/bin\/bash$/m);
    assert.match(await readFile(join(tree, 'etc/group'), 'utf8'), /^user:x:1000:$/m);
    assert.match(await readFile(join(tree, 'etc/group'), 'utf8'), /^docker:x:999:user$/m);
    assert.equal(await readFile(join(tree, 'etc/sudoers.d/kiln-user'), 'utf8'), 'user ALL=(ALL:ALL) NOPASSWD: ALL\n');
    assert.equal((await stat(join(tree, 'etc/sudoers.d/kiln-user'))).mode & 0o777, 0o440);
    assert.match(await readFile(join(tree, 'etc/shadow'), 'utf8'), /^user:\*:/m);
    const sh = await stat(join(tree, 'etc/shadow'));
    assert.equal(sh.gid, 42, 'shadow keeps its group');
    assert.equal(sh.mode & 0o777, 0o640);
    const home = await stat(join(tree, 'home/user'));
    assert.equal(home.uid, 1000);
    assert.equal(home.gid, 1000);
    assert.equal(home.mode & 0o777, 0o755);
    assert.equal((await stat(join(tree, 'home/user/.bashrc'))).uid, 1000);
    // The base layer is as it was (no write went through a hard link).
    assert.equal(await readFile(join(base, 'etc/passwd'), 'utf8'), 'root:x:0:0:root:/root:/bin/bash\n');
    assert.equal(await readFile(join(base, 'etc/shadow'), 'utf8'), 'root:*:20000:0:99999:7:::\n');
    assert.equal((await stat(join(base, 'etc/skel/.bashrc'))).uid, 0);

    // Idempotent: a second pass adds nothing.
    const before = await readFile(join(tree, 'etc/passwd'), 'utf8');
    const groupBefore = await readFile(join(tree, 'etc/group'), 'utf8');
    await addGuestUser(tree);
    assert.equal(await readFile(join(tree, 'etc/passwd'), 'utf8'), before);
    assert.equal(await readFile(join(tree, 'etc/group'), 'utf8'), groupBefore);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

test('addGuestUser refuses a uid that another account holds', async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'kiln-guest-user-'));
  try {
    await mkdir(join(tmp, 'etc'), { recursive: true });
    await writeFile(join(tmp, 'etc/passwd'), 'someone:x:1000:1000::/home/someone:/bin/sh\n');
    await cp(join(tmp, 'etc/passwd'), join(tmp, 'etc/group'));
    await assert.rejects(addGuestUser(tmp), /id 1000 is taken by someone/);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

test('withEntry appends once and keeps a trailing newline', () => {
  assert.equal(withEntry('a:x:1\n', 'b', 'b:x:2'), 'a:x:1\nb:x:2\n');
  assert.equal(withEntry('a:x:1\nb:x:2\n', 'b', 'b:x:3'), 'a:x:1\nb:x:2\n');
});

test('withMember adds a member to a group line once, after any others', () => {
  assert.equal(withMember('docker:x:999:\n', 'docker', 'user'), 'docker:x:999:user\n');
  assert.equal(withMember('docker:x:999:a\n', 'docker', 'user'), 'docker:x:999:a,user\n');
  assert.equal(withMember('docker:x:999:a,user\n', 'docker', 'user'), 'docker:x:999:a,user\n');
  assert.equal(withMember('docker:!::\n', 'docker', 'user'), 'docker:!::user\n');
  assert.equal(withMember('root:x:0:\n', 'docker', 'user'), 'root:x:0:\n');
});
