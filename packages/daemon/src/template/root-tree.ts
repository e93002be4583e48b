/**
 * The host side of a template built from a container image: the image's filesystem (a
 * `docker export` tar) becomes <staging>/root, kiln's small layer is added to it, and the
 * whole staging tree is written into the template's scratch disk (an ext4 made with
 * `mkfs.ext4 -d`), so the guest finds it at /scratch/root and guest-init runs the agent
 * chrooted into it (docs/templates.md, "How a template root works").
 *
 * kiln's layer, all new paths (nothing of the image is replaced except missing basics):
 *   /opt/kiln/sys        mount point: guest-init binds the guest's own root here (agent, node, busybox, docker CLI)
 *   /opt/kiln/bin/sh     -> kiln's static busybox (the wrappers' interpreter)
 *   /opt/kiln/bin/docker wrapper: the guest root's docker CLI through its own loader and libraries
 *   /usr/local/bin/docker -> /opt/kiln/bin/docker, when the image has no docker of its own
 *   /proc /sys /dev /run /tmp, /var/run -> ../run, /etc/{passwd,group,hosts,hostname,resolv.conf,machine-id} when missing
 */
import { spawn } from 'node:child_process';
import { chmod, lstat, mkdir, open, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../errors.js';
import { run } from '../image/exec.js';
import { requireTools } from '../image/host-tools.js';
import { SCRATCH_LABEL } from '../image/scratch-disk.js';

const SYS = '/opt/kiln/sys';
const LIB = `${SYS}/usr/lib/x86_64-linux-gnu`;
export const DOCKER_WRAPPER = `#!/opt/kiln/bin/sh
# kiln: the guest's docker CLI, run with the guest root's own loader and libraries (any image libc works)
[ -n "$DOCKER_HOST" ] || export DOCKER_HOST=unix:///run/docker.sock
exec ${LIB}/ld-linux-x86-64.so.2 --library-path ${LIB} ${SYS}/usr/bin/docker "$@"
`;

/** A tar extractor writing into `dir` (created): write the tar to `input`, then await `done`. */
export function extractTar(dir: string): { input: NodeJS.WritableStream; done: Promise<void> } {
  const child = spawn('tar', ['-x', '-p', '--numeric-owner', '-C', dir, '--exclude=dev/*', '--exclude=./dev/*'], { stdio: ['pipe', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-4000)));
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new KilnError('TEMPLATE_BUILD_FAILED', `unpacking the image's filesystem failed (tar exit ${code}): ${err.trim()}`))));
  });
  child.stdin.on('error', () => undefined);
  return { input: child.stdin, done };
}

async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}

/** A regular file at `p` (a symlink there, e.g. resolv.conf -> ../run/…, is replaced: the agent writes these). */
async function ensureFile(p: string, content: string): Promise<void> {
  const st = await lstat(p).catch(() => null);
  if (st?.isFile()) return;
  if (st) await rm(p, { recursive: true, force: true });
  await writeFile(p, content, { mode: 0o644 });
}

/** Adds kiln's layer (see the top of this file) to an exported image root. */
export async function addKilnLayer(root: string): Promise<void> {
  for (const d of ['proc', 'sys', 'dev', 'run', 'tmp', 'etc', 'opt/kiln/bin', 'opt/kiln/sys', 'usr/local/bin', 'var']) await mkdir(join(root, d), { recursive: true });
  await chmod(join(root, 'tmp'), 0o1777);
  if (!(await exists(join(root, 'var/run')))) await symlink('../run', join(root, 'var/run'));
  // kiln's own paths win over anything the image put there.
  for (const p of ['opt/kiln/bin/sh', 'opt/kiln/bin/docker']) await rm(join(root, p), { recursive: true, force: true });
  await symlink(`${SYS}/opt/kiln/bin/busybox`, join(root, 'opt/kiln/bin/sh'));
  await writeFile(join(root, 'opt/kiln/bin/docker'), DOCKER_WRAPPER, { mode: 0o755 });
  await chmod(join(root, 'opt/kiln/bin/docker'), 0o755);
  const hasDocker = (await exists(join(root, 'usr/bin/docker'))) || (await exists(join(root, 'usr/local/bin/docker')));
  if (!hasDocker) await symlink('/opt/kiln/bin/docker', join(root, 'usr/local/bin/docker'));
  if (!(await exists(join(root, 'etc/passwd')))) await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  if (!(await exists(join(root, 'etc/group')))) await writeFile(join(root, 'etc/group'), 'root:x:0:\n');
  await ensureFile(join(root, 'etc/hosts'), '127.0.0.1\tlocalhost\n');
  await ensureFile(join(root, 'etc/hostname'), 'kiln\n');
  await ensureFile(join(root, 'etc/resolv.conf'), '# set by kiln at run time\n');
  await ensureFile(join(root, 'etc/machine-id'), '');
}

/** Writes `staging` (holding root/) into a new sparse `sizeGiB` ext4 scratch disk at `path`. */
export async function makeRootScratch(staging: string, path: string, sizeGiB: number): Promise<void> {
  const { 'mkfs.ext4': mkfs } = requireTools(['mkfs.ext4']);
  const fh = await open(path, 'w', 0o600);
  try {
    await fh.truncate(sizeGiB * 1024 ** 3);
  } finally {
    await fh.close();
  }
  try {
    await run(mkfs as string, ['-q', '-F', '-L', SCRATCH_LABEL, '-m', '0', '-E', 'lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner=0:0', '-d', staging, path]);
  } catch (err) {
    await rm(path, { force: true });
    throw new KilnError('TEMPLATE_BUILD_FAILED', `writing the image's filesystem to a disk failed: ${(err as Error).message}`, { cause: err });
  }
}
