// Compiles the agent's native helpers into static binaries, so they run in the guest with no
// libraries: native/kiln-guestctl.c (the resident helper) into dist/kiln-guestctl, and
// native/kiln-pty.c (runs a background process on a terminal) into dist/kiln-pty.
import { fileURLToPath } from 'node:url';
import { buildStatic } from '../../../scripts/build-static.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
buildStatic(here('../native/kiln-guestctl.c'), here('../dist/kiln-guestctl'), ['-Os', '-s']);
buildStatic(here('../native/kiln-pty.c'), here('../dist/kiln-pty'), ['-Os', '-s']);
buildStatic(here('../native/kiln-oci.c'), here('../dist/kiln-oci'), ['-Os', '-s']);
