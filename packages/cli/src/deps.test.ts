// The CLI is a client: it depends on @kiln/sdk and commander (and @kiln/mcp, the MCP server
// that `kiln mcp` alone loads), never on the daemon, and `kiln --version` / `kiln ls` load no
// more than they need (the start-up figure is in the bench).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const pkg = join(import.meta.dirname, '..');
const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));

test('the CLI depends on @kiln/sdk, @kiln/mcp and commander only; only commands/mcp.ts imports @kiln/mcp, no source another kiln package', () => {
  const deps = Object.keys((JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies).sort();
  assert.deepEqual(deps, ['@kiln/mcp', '@kiln/sdk', 'commander']);
  for (const f of sources(join(pkg, 'src'))) {
    for (const m of readFileSync(f, 'utf8').matchAll(/(?:from|import\()\s*'(@kiln\/[^'/]+)/g)) {
      if (m[1] === '@kiln/mcp') assert.ok(f.endsWith(join('commands', 'mcp.ts')), `${f} imports @kiln/mcp (only kiln mcp may)`);
      else assert.equal(m[1], '@kiln/sdk', `${f} imports ${m[1]}`);
    }
  }
});

test('kiln --version answers without loading commander or the SDK; kiln ls loads the SDK transport, not its sandbox modules', () => {
  const probe = (args: string[]) => {
    const hook = 'import { registerHooks } from "node:module"; registerHooks({ resolve(s, c, next) { const r = next(s, c); process.stderr.write("LOAD " + r.url + "\\n"); return r; } });';
    const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(hook)}`, join(pkg, 'dist/main.js'), ...args], { encoding: 'utf8' });
    return r.stderr.split('\n').filter((l) => l.startsWith('LOAD ')).map((l) => l.slice(5));
  };
  const version = probe(['--version']);
  assert.ok(!version.some((u) => /node_modules\/commander|\/packages\/(sdk|daemon)\//.test(u)), `--version loaded: ${version.join(' ')}`);
  const ls = probe(['--socket', '/nonexistent/kiln.sock', 'ls']);
  assert.ok(ls.some((u) => u.includes('/packages/sdk/dist/transport.js')), `ls loaded: ${ls.join(' ')}`);
  assert.ok(!ls.some((u) => /\/packages\/sdk\/dist\/(sandbox|process|pty|files|error-classes)\.js|\/packages\/daemon\//.test(u)), `ls loaded: ${ls.join(' ')}`);
  assert.ok(!ls.some((u) => /\/packages\/mcp\/|@modelcontextprotocol|node_modules\/zod\//.test(u)), `ls loaded the MCP server: ${ls.join(' ')}`);
});
