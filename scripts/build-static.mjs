// Compiles one C file into a static binary with gcc (kiln's native helpers: the guest's
// kiln-guestctl, the host's kiln-vmm-launch). Skipped when the binary is newer than its
// source. gcc's output is reproducible, so an image hash only moves with the source.
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

const mtime = (p) => {
  try {
    return statSync(p).mtimeMs;
  } catch {
    return -1;
  }
};

/** Builds `out` from `src` with `gcc -static -Wall -Wextra -Werror` plus `flags`. */
export function buildStatic(src, out, flags) {
  if (mtime(out) > mtime(src)) {
    console.log(`up to date ${out}`);
    return;
  }
  mkdirSync(dirname(out), { recursive: true });
  try {
    execFileSync('gcc', ['-static', '-Wall', '-Wextra', '-Werror', ...flags, '-o', out, src], { stdio: 'inherit' });
  } catch (err) {
    console.error(`building ${out} needs gcc and the static C library (apt-get install gcc libc6-dev)`);
    throw err;
  }
  console.log(`built ${out}`);
}
