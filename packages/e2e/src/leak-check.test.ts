/**
 * The leak check itself (no VM needed): a planted process, run dir and cgroup named after a
 * sandbox are found, reported by DaemonFixture.close() as a failure, and removed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DaemonFixture } from './harness.js';
import { sandboxLeftovers } from './leak-check.js';
import { waitFor } from './lifecycle-leftovers.js';

const skip = process.getuid?.() === 0 ? false : 'needs root (cgroups)';

test('close() fails the suite on what a sandbox left behind, names it, and removes it', { skip }, async () => {
  const fx = new DaemonFixture('leakcheck');
  const id = `sb-${randomBytes(6).toString('hex')}`;
  const other = `sb-${randomBytes(6).toString('hex')}`;
  // A stray "VMM" (its argv names the sandbox, as QEMU's -name does), a run dir with a socket path, a cgroup.
  const proc = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 300_000)', `kiln-${id}`], { stdio: 'ignore' });
  const exited = new Promise((r) => proc.once('exit', r));
  await new Promise((r) => proc.once('spawn', r));
  const runDir = join(fx.stateDir, 'sandboxes', id);
  mkdirSync(runDir, { recursive: true });
  const cgroup = existsSync('/sys/fs/cgroup/pids') ? `/sys/fs/cgroup/pids/kiln/${id}` : `/sys/fs/cgroup/kiln/${id}`;
  mkdirSync(cgroup, { recursive: true });
  // Another kilnd's sandbox (not this fixture's) is none of its business.
  const foreign = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 300_000)', `kiln-${other}`], { stdio: 'ignore' });
  const execd = (pid: number | undefined, what: string) => () => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(what);
  await waitFor('the planted processes to exec', () => execd(proc.pid, id)() && execd(foreign.pid, other)(), 5000, 10);
  try {
    fx.sandboxIds.add(id);
    const left = sandboxLeftovers(fx.stateDir, id);
    assert.ok(left.some((l) => l.startsWith(`process ${proc.pid}`)), left.join(', '));
    assert.ok(left.includes(`path ${runDir}`), left.join(', '));
    assert.ok(left.includes(`cgroup ${cgroup}`), left.join(', '));
    await assert.rejects(fx.close({ settleMs: 0 }), (e: Error) => e.message.includes(id) && e.message.includes(`process ${proc.pid}`) && !e.message.includes(other));
    await exited;
    assert.equal(existsSync(cgroup), false, 'the cgroup was removed');
    assert.equal(existsSync(fx.stateDir), false, 'the state dir was removed');
    assert.equal(foreign.exitCode, null, "another kilnd's sandbox is left alone");
  } finally {
    proc.kill('SIGKILL');
    foreign.kill('SIGKILL');
    // If an assertion failed before close() cleaned up.
    rmSync(fx.stateDir, { recursive: true, force: true });
    if (existsSync(cgroup)) rmdirSync(cgroup);
  }
});

test('close() passes when nothing of its sandboxes is left', { skip }, async () => {
  const fx = new DaemonFixture('leakcheck');
  fx.sandboxIds.add(`sb-${randomBytes(6).toString('hex')}`);
  await fx.close();
});
