#!/usr/bin/env node
// The test command: builds (incremental), makes sure the guest image exists (cached by the hash
// of its recipe, so this is a no-op when nothing changed), then runs every test with Node's test
// runner: unit tests first, then the integration tests that boot real microVMs.
//   node scripts/test.mjs            all tests
//   node scripts/test.mjs --unit     unit tests only (no VM, no root needed)
//   node scripts/test.mjs FILTER…    only test files whose path contains a FILTER
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const filters = args.filter((a) => !a.startsWith('--'));

const run = (cmd, argv, opts = {}) => {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: repo, ...opts });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

run('npm', ['run', '--silent', 'build']);

function find(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const packages = ['contract', 'protocol', 'agent', 'daemon', 'sdk', 'mcp', 'cli'];
const unit = packages.flatMap((p) => find(join(repo, 'packages', p, 'dist')));
const integration = unitOnly ? [] : find(join(repo, 'packages/e2e/dist'));
let files = [...unit, ...integration];
if (filters.length) files = files.filter((f) => filters.some((x) => f.includes(x)));

const isRoot = process.getuid?.() === 0;
if (integration.length && isRoot && !unitOnly) {
  // Builds the image on first use; returns at once when the cached image matches the recipe.
  const stateDir = process.env.KILN_TEST_IMAGE_STATE_DIR ?? process.env.KILN_STATE_DIR ?? '/var/lib/kiln';
  run(process.execPath, [join(repo, 'packages/daemon/dist/kilnd.js'), 'image', 'build', '--state-dir', stateDir]);
}
if (!isRoot && integration.length) console.error('note: not root: integration tests will be skipped (they say why)');

// Integration files boot VMs under TCG on a 2-core machine: run files one at a time.
run(process.execPath, ['--test', '--test-concurrency=1', ...files]);
