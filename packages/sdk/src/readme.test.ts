// The README's examples are the files in src/examples (run against a real kilnd by
// packages/e2e/src/sdk-readme.test.ts): every `<!-- example: NAME.ts -->` block must equal its file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const pkg = join(import.meta.dirname, '..');

test('README code blocks are the example files, and every example is in the README', () => {
  const readme = readFileSync(join(pkg, 'README.md'), 'utf8');
  const blocks = new Map<string, string>();
  for (const m of readme.matchAll(/<!-- example: (\S+) -->\n```ts\n([\s\S]*?)```/g)) blocks.set(m[1]!, m[2]!);
  const files = readdirSync(join(pkg, 'src/examples')).filter((f) => f.endsWith('.ts'));
  assert.deepEqual([...blocks.keys()].sort(), files.sort());
  for (const f of files) assert.equal(blocks.get(f), readFileSync(join(pkg, 'src/examples', f), 'utf8'), `README block for ${f} differs from src/examples/${f}`);
});
