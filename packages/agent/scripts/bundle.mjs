// Bundles the agent (and the protocol package it imports) into one CommonJS file that runs
// on the guest's Node 18 or 20 with nothing else installed: dist/kiln-agent.cjs.
// Run after `tsc -b packages/agent` (it bundles the compiled protocol package via the
// workspace link, and the agent's TypeScript sources directly).
import { chmod } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const outfile = here('../dist/kiln-agent.cjs');

await build({
  entryPoints: [here('../src/main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node18',
  format: 'cjs',
  banner: { js: '#!/usr/bin/env node' },
  legalComments: 'none',
  sourcemap: false,
  logLevel: 'warning',
});
await chmod(outfile, 0o755);
console.log(`bundled ${outfile}`);
