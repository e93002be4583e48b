import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { findCycles, importGraph, importSpecifiers } from './import-graph.js';

const packages = resolve(import.meta.dirname, '../../..');

for (const pkg of ['agent', 'daemon', 'protocol', 'contract', 'sdk', 'cli']) {
  test(`packages/${pkg}/src has no import cycle`, () => {
    const src = join(packages, pkg, 'src');
    const graph = importGraph(src);
    assert.ok(graph.size > 3, `read ${graph.size} files under ${src}`);
    const cycles = findCycles(graph, src);
    assert.deepEqual(cycles.map((c) => c.join(' → ')), []);
  });
}

test('the parser sees every form of import, type-only ones included', () => {
  const text = [
    "import { a } from './a.js';",
    "import type { B } from '../b.js';",
    "export { c } from './c.js';",
    "export * from './d.js';",
    "import './e.js';",
    'const f = await import(\'./f.js\');',
    "import {\n  g,\n  h,\n} from './gh.js';",
    "import { x } from 'node:fs';",
    "import { y } from '@kiln/protocol';",
  ].join('\n');
  assert.deepEqual(importSpecifiers(text), ['./a.js', '../b.js', './c.js', './d.js', './e.js', './gh.js', './f.js'].sort((p, q) => text.indexOf(p) - text.indexOf(q)));
});

test('a cycle through a directory index and a type import is found and named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-cycles-'));
  try {
    mkdirSync(join(dir, 'ops'));
    writeFileSync(join(dir, 'session.ts'), "import { handlers } from './ops/index.js';\n");
    writeFileSync(join(dir, 'ops', 'index.ts'), "export { net } from './net.js';\n");
    writeFileSync(join(dir, 'ops', 'net.ts'), "import type { Session } from '../session.js';\n");
    writeFileSync(join(dir, 'leaf.ts'), "import { handlers } from './ops/index.js';\n");
    assert.deepEqual(findCycles(importGraph(dir), dir), [['ops/index.ts', 'ops/net.ts', 'session.ts', 'ops/index.ts']]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
