// Compiles the VMM launcher (native/kiln-vmm-launch.c) into dist/kiln-vmm-launch, where kilnd
// looks for it (vmm/jail.ts): a static binary, so the jail's setup depends on no library.
import { fileURLToPath } from 'node:url';
import { buildStatic } from '../../../scripts/build-static.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
buildStatic(here('../native/kiln-vmm-launch.c'), here('../dist/kiln-vmm-launch'), ['-O2', '-s', '-D_FORTIFY_SOURCE=2', '-fstack-protector-strong']);
// The peer-credential helper (native/kiln-peercred.c → dist/kiln-peercred; audit/peer.ts).
buildStatic(here('../native/kiln-peercred.c'), here('../dist/kiln-peercred'), ['-O2', '-s', '-D_FORTIFY_SOURCE=2', '-fstack-protector-strong']);
