import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { flattenDisk, readQcowHeader } from './disk-flatten.js';
import { ensureVmmIdentity, LAUNCHER_PATH } from './jail.js';

const tools = (() => {
  try {
    execFileSync('qemu-img', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
const skip = tools ? false : 'qemu-img is not installed';
const img = (...args: string[]) => execFileSync('qemu-img', args, { stdio: 'pipe' });

function fixture() {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-flatten-'));
  const templates = join(dir, 'templates');
  mkdirSync(join(templates, 'k1'), { recursive: true });
  const base = join(templates, 'k1', 'scratch.img');
  writeFileSync(base, Buffer.concat([Buffer.alloc(4096, 1), Buffer.alloc(1024 * 1024 - 4096)]));
  const secret = join(dir, 'host-secret');
  writeFileSync(secret, Buffer.alloc(1024 * 1024, 0x53));
  const sandbox = join(dir, 'sb');
  mkdirSync(sandbox);
  return { dir, templates, base, secret, sandbox, done: () => rmSync(dir, { recursive: true, force: true }) };
}

test('a qcow2 header is read for what it names: backing file, external data file, size', { skip }, () => {
  const f = fixture();
  try {
    const overlay = join(f.sandbox, 'scratch.qcow2');
    img('create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', f.base, overlay);
    assert.deepEqual(readQcowHeader(overlay), { virtualBytes: 1024 * 1024, backing: f.base, externalDataFile: false });
    const data = join(f.sandbox, 'data.qcow2');
    img('create', '-q', '-f', 'qcow2', '-o', `data_file=${f.secret}`, data, '1M');
    assert.equal(readQcowHeader(data).externalDataFile, true);
  } finally {
    f.done();
  }
});

test("a disk that names a host file (backing or data file) is refused; a template's backing is flattened", { skip }, async () => {
  const f = fixture();
  const identity = process.getuid?.() === 0 && existsSync(LAUNCHER_PATH) ? ensureVmmIdentity() : null;
  try {
    // the VMM rewrote its overlay's header to name a host file as the backing file
    const evil = join(f.sandbox, 'evil.qcow2');
    img('create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', f.secret, evil);
    await assert.rejects(flattenDisk({ src: { path: evil, format: 'qcow2' }, out: join(f.sandbox, 'o1'), templatesRoot: f.templates, identity }), { code: 'DISK_UNSAFE' });
    const data = join(f.sandbox, 'data.qcow2');
    img('create', '-q', '-f', 'qcow2', '-o', `data_file=${f.secret}`, data, '1M');
    await assert.rejects(flattenDisk({ src: { path: data, format: 'qcow2' }, out: join(f.sandbox, 'o2'), templatesRoot: f.templates, identity }), { code: 'DISK_UNSAFE' });
    assert.equal(existsSync(join(f.sandbox, 'o1')) || existsSync(join(f.sandbox, 'o2')), false);

    const good = join(f.sandbox, 'scratch.qcow2');
    img('create', '-q', '-f', 'qcow2', '-F', 'raw', '-b', f.base, good);
    const out = join(f.sandbox, 'flat.img');
    await flattenDisk({ src: { path: good, format: 'qcow2' }, out, templatesRoot: f.templates, identity });
    assert.deepEqual(readFileSync(out), readFileSync(f.base));
    assert.equal(statSync(out).uid, process.getuid?.(), 'the flattened disk is kilnd’s');
    assert.equal(existsSync(`${out}.jail`), false);
  } finally {
    f.done();
  }
});
