/**
 * The initramfs: static busybox, the few modules needed to reach the root (virtio-mmio,
 * virtio-blk, virtio-console, overlay, with their dependencies in load order) and kiln's /init.
 * Written as a gzip-compressed newc cpio archive.
 */
import { createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, symlink, writeFile, lstat } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PassThrough } from 'node:stream';
import { createGzip } from 'node:zlib';
import { run } from './exec.js';
import { ImageBuildError } from './errors.js';
import { moduleLoadOrder } from './modules.js';

export interface InitramfsInput {
  /** staging directory (created, left for the caller to remove) */
  stagingDir: string;
  /** output file (initrd.img) */
  out: string;
  /** the kernel's lib/modules/<release> directory (with modules.dep) */
  modulesDir: string;
  release: string;
  /** module names to load, dependencies are added */
  modules: readonly string[];
  /** static busybox binary */
  busybox: string;
  /** the /init script */
  initScript: string;
}

async function listTree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of (await readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(dir, e.name);
      out.push(relative(root, p));
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(root);
  return out;
}

/** Builds the initramfs; returns the module paths in the order /init loads them. */
export async function buildInitramfs(input: InitramfsInput): Promise<string[]> {
  const s = input.stagingDir;
  for (const d of ['bin', 'dev', 'proc', 'sys', 'etc/kiln', 'lower', 'scratch', 'newroot']) await mkdir(join(s, d), { recursive: true });

  const ldd = await run('ldd', [input.busybox]).catch((e: unknown) => (e instanceof ImageBuildError ? 'not a dynamic executable' : ''));
  if (!/not a dynamic executable|statically linked/.test(ldd)) {
    throw new ImageBuildError(`${input.busybox} is dynamically linked: apt-get install busybox-static`);
  }
  await copyFile(input.busybox, join(s, 'bin/busybox'));
  await chmod(join(s, 'bin/busybox'), 0o755);
  const applets = (await run(input.busybox, ['--list'])).split('\n').filter((a) => /^[\w.[-]+$/.test(a) && a !== 'busybox');
  for (const a of applets) await symlink('busybox', join(s, 'bin', a));

  const order = await moduleLoadOrder(input.modulesDir, input.modules);
  for (const rel of order) {
    const dest = join(s, 'lib/modules', input.release, rel);
    await mkdir(dirname(dest), { recursive: true });
    await copyFile(join(input.modulesDir, rel), dest);
  }
  await writeFile(join(s, 'etc/kiln/modules'), order.map((p) => `${input.release}/${p}\n`).join(''));
  await copyFile(input.initScript, join(s, 'init'));
  await chmod(join(s, 'init'), 0o755);
  // the kernel's built-in initramfs already has /dev/console; add it too where we may (root)
  await run('mknod', ['-m', '600', join(s, 'dev/console'), 'c', '5', '1']).catch(() => undefined);

  const files = await listTree(s);
  for (const f of files) await lstat(join(s, f)); // fail early on races
  const cpioOut = new PassThrough();
  const write = pipeline(cpioOut, createGzip({ level: 9 }), createWriteStream(input.out));
  await run('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0', '--reproducible'], {
    cwd: s,
    input: files.join('\n') + '\n',
    stdout: cpioOut,
  });
  await write;
  return order;
}
