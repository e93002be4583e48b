// Compiles the agent's resident helper (native/kiln-guestctl.c) into dist/kiln-guestctl: a
// static binary, so it runs in the guest with no libraries.
import { fileURLToPath } from 'node:url';
import { buildStatic } from '../../../scripts/build-static.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
buildStatic(here('../native/kiln-guestctl.c'), here('../dist/kiln-guestctl'), ['-Os', '-s']);
