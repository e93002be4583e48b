// Compiles the agent's resident helper (native/kiln-guestctl.c) into dist/kiln-guestctl: a
// static binary, so it runs in the guest with no libraries. Skipped when the binary is newer
// than its source. gcc's output is reproducible, so the image hash only moves with the source.
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const src = here('../native/kiln-guestctl.c');
const out = here('../dist/kiln-guestctl');
const mtime = (p) => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
};

if (mtime(out) > mtime(src)) {
  console.log(`up to date ${out}`);
} else {
  mkdirSync(here('../dist'), { recursive: true });
  try {
    execFileSync('gcc', ['-static', '-Os', '-s', '-Wall', '-Wextra', '-Werror', '-o', out, src], { stdio: 'inherit' });
  } catch (err) {
    console.error('building kiln-guestctl needs gcc and the static C library (apt-get install gcc libc6-dev)');
    throw err;
  }
  console.log(`built ${out}`);
}
