// Compiles the VMM launcher (native/kiln-vmm-launch.c) into dist/kiln-vmm-launch, where kilnd
// looks for it (vmm/jail.ts): a static binary, so the jail's setup depends on no library.
// Skipped when the binary is newer than its source.
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const src = here('../native/kiln-vmm-launch.c');
const out = here('../dist/kiln-vmm-launch');
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
    execFileSync('gcc', ['-static', '-O2', '-s', '-Wall', '-Wextra', '-Werror', '-D_FORTIFY_SOURCE=2', '-fstack-protector-strong', '-o', out, src], { stdio: 'inherit' });
  } catch (err) {
    console.error('building kiln-vmm-launch needs gcc and the static C library (apt-get install gcc libc6-dev)');
    throw err;
  }
  console.log(`built ${out}`);
}
