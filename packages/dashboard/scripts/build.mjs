// Builds the dashboard into dist/: app.js (esbuild bundle of src/main.tsx: preact, uPlot,
// xterm.js), app.css (its styles with uPlot's and xterm's) and index.html. Nothing is loaded
// from elsewhere at run time: kilnd serves these three files at /ui.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
rmSync(here('../dist'), { recursive: true, force: true });
mkdirSync(here('../dist'), { recursive: true });
await build({
  entryPoints: { app: here('../src/main.tsx') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: here('../dist'),
  legalComments: 'linked',
  logLevel: 'warning',
});
copyFileSync(here('../src/index.html'), here('../dist/index.html'));
console.log(`built ${here('../dist')}`);
