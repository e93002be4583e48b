/**
 * The guest root filesystem: a debootstrap minbase tree (base layer, slow, cached) that the
 * final layer extends with kiln's files, then written to a read-only ext4 image.
 */
import { chmod, copyFile, mkdir, readFile, rm, stat, symlink, writeFile, cp } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageBuildError } from './errors.js';
import { run } from './exec.js';
import { addGuestUser } from './guest-user.js';

/** Bulky paths the guest never needs (apt caches, docs, man pages, translations). */
const TRIM = ['var/cache/apt/archives', 'var/cache/apt/pkgcache.bin', 'var/cache/apt/srcpkgcache.bin', 'var/lib/apt/lists', 'usr/share/doc', 'usr/share/man', 'usr/share/info', 'usr/share/locale'];

/** Keeps later `apt-get install` in the guest from bringing docs and translations back. */
const DPKG_NODOC = `# kiln: keep the guest lean
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
`;

export interface BaseRootfsInput {
  dir: string;
  suite: string;
  mirror: string;
  packages: readonly string[];
  /** debootstrap's package cache (kept across builds) */
  debCache: string;
  /** the kernel's lib/modules/<release> tree to copy in */
  modulesDir: string;
  release: string;
}

/** debootstrap + trim + kernel modules + the dockremap user: everything keyed by the base key. */
export async function buildBaseRootfs(b: BaseRootfsInput, step: (s: string, detail?: string) => void): Promise<void> {
  await mkdir(b.debCache, { recursive: true });
  step('debootstrap', `${b.suite} minbase + ${b.packages.join(',')}`);
  await run('debootstrap', ['--variant=minbase', `--cache-dir=${b.debCache}`, `--include=${b.packages.join(',')}`, b.suite, b.dir, b.mirror]);

  step('rootfs-trim');
  for (const t of TRIM) await rm(join(b.dir, t), { recursive: true, force: true });
  for (const d of ['var/cache/apt/archives/partial', 'var/lib/apt/lists/partial', 'usr/share/doc', 'usr/share/man', 'usr/share/locale']) await mkdir(join(b.dir, d), { recursive: true });
  await writeFile(join(b.dir, 'etc/dpkg/dpkg.cfg.d/kiln-nodoc'), DPKG_NODOC);

  step('rootfs-modules', b.release);
  const modDest = join(b.dir, 'usr/lib/modules', b.release);
  await mkdir(join(b.dir, 'usr/lib/modules'), { recursive: true });
  await cp(b.modulesDir, modDest, { recursive: true });
  await run('depmod', ['-b', b.dir, b.release]);

  step('rootfs-users');
  await run('chroot', [b.dir, 'useradd', '--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', 'dockremap']);
  for (const f of ['etc/subuid', 'etc/subgid']) await writeFile(join(b.dir, f), 'dockremap:100000:65536\n');
  // no root password: lock it (debootstrap leaves '*' already; make sure)
  await run('chroot', [b.dir, 'usermod', '--password', '*', 'root']);
  await writeFile(join(b.dir, 'etc/hostname'), 'kiln\n');
  // debootstrap copies the host's resolv.conf in: nothing of the host goes into the guest
  // (kiln configures DNS at run time through the agent)
  await rm(join(b.dir, 'etc/resolv.conf'), { force: true });
  await writeFile(join(b.dir, 'etc/resolv.conf'), '# set by kiln at run time\n');
  await writeFile(join(b.dir, 'etc/machine-id'), '');
}

export interface KilnFilesInput {
  dir: string;
  agentBundle: string;
  guestCtl: string;
  ptyHelper: string;
  ociHelper: string;
  nodeBinary: string;
  busybox: string;
  guestDir: string;
  /** npm for the guest's users (/usr/local/lib/node_modules/npm), or null */
  npmDir: string | null;
}

/**
 * Adds kiln's own files to a tree (new files only: the tree may be a hard-link copy of the
 * base layer). Checks that the copied node binary runs in the root (its libraries are there).
 */
export async function addKilnFiles(k: KilnFilesInput): Promise<void> {
  const opt = join(k.dir, 'opt/kiln');
  await mkdir(join(opt, 'agent'), { recursive: true });
  await mkdir(join(opt, 'bin'), { recursive: true });
  await copyFile(k.agentBundle, join(opt, 'agent/kiln-agent.cjs'));
  await copyFile(k.nodeBinary, join(opt, 'bin/node'));
  await chmod(join(opt, 'bin/node'), 0o755);
  await copyFile(k.guestCtl, join(opt, 'bin/kiln-guestctl'));
  await chmod(join(opt, 'bin/kiln-guestctl'), 0o755);
  await copyFile(k.ptyHelper, join(opt, 'bin/kiln-pty'));
  await chmod(join(opt, 'bin/kiln-pty'), 0o755);
  await copyFile(k.ociHelper, join(opt, 'bin/kiln-oci'));
  await chmod(join(opt, 'bin/kiln-oci'), 0o755);
  // containerd finds its runc shim on PATH, /opt/kiln/bin first: kiln-oci fronts it (the shared shim, native/kiln-oci.c)
  await symlink('kiln-oci', join(opt, 'bin/containerd-shim-runc-v2'));
  await copyFile(k.busybox, join(opt, 'bin/busybox'));
  await chmod(join(opt, 'bin/busybox'), 0o755);
  await copyFile(join(k.guestDir, 'guest-init'), join(opt, 'guest-init'));
  await chmod(join(opt, 'guest-init'), 0o755);
  await copyFile(join(k.guestDir, 'guest-modules'), join(opt, 'guest-modules'));
  await copyFile(join(k.guestDir, 'docker-warm'), join(opt, 'docker-warm'));
  await chmod(join(opt, 'docker-warm'), 0o755);
  await copyFile(join(k.guestDir, 'containerd.toml'), join(opt, 'containerd.toml'));
  const sbin = join(k.dir, 'usr/local/sbin');
  await mkdir(sbin, { recursive: true });
  await copyFile(join(k.guestDir, 'poweroff'), join(sbin, 'poweroff'));
  await chmod(join(sbin, 'poweroff'), 0o755);
  for (const alias of ['reboot', 'halt']) await symlink('poweroff', join(sbin, alias));
  await addGuestUser(k.dir);
  await addUserNode(k.dir, k.npmDir);

  try {
    await run('chroot', [k.dir, '/opt/kiln/bin/node', '-e', 'process.exit(0)']);
  } catch (cause) {
    const ldd = await run('ldd', [k.nodeBinary]).catch(() => '');
    throw new ImageBuildError(`the node binary ${k.nodeBinary} does not run in the guest root (missing libraries?)`, {
      cause,
      details: { ldd },
    });
  }
}

/**
 * Node.js LTS for the guest's users: /usr/local/bin/node is kiln's own node binary (the agent's,
 * one copy in the image), npm and npx come from the same distribution.
 */
async function addUserNode(dir: string, npmDir: string | null): Promise<void> {
  const bin = join(dir, 'usr/local/bin');
  await mkdir(bin, { recursive: true });
  await symlink('/opt/kiln/bin/node', join(bin, 'node'));
  if (!npmDir) return;
  const lib = join(dir, 'usr/local/lib/node_modules');
  await mkdir(lib, { recursive: true });
  await cp(npmDir, join(lib, 'npm'), { recursive: true });
  await symlink('../lib/node_modules/npm/bin/npm-cli.js', join(bin, 'npm'));
  await symlink('../lib/node_modules/npm/bin/npx-cli.js', join(bin, 'npx'));
}

/** Size of the ext4 image for a tree: its usage plus headroom, in MiB (free space stays sparse). */
async function ext4SizeMiB(dir: string): Promise<number> {
  const kib = Number((await run('du', ['-s', '-x', '--block-size=1K', dir])).split(/\s/)[0]);
  if (!Number.isFinite(kib) || kib <= 0) throw new ImageBuildError(`cannot size ${dir}`);
  return Math.ceil((kib * 1.15) / 1024) + 128;
}

/** Writes `dir` into a journal-less ext4 image labelled kiln-root (mounted ro,noload by the guest). */
export async function makeRootExt4(dir: string, out: string): Promise<number> {
  const sizeMiB = await ext4SizeMiB(dir);
  await rm(out, { force: true });
  await run('mkfs.ext4', ['-q', '-F', '-L', 'kiln-root', '-O', '^has_journal', '-m', '0', '-i', '8192', '-E', 'root_owner=0:0,nodiscard', '-d', dir, out, `${sizeMiB}M`]);
  return (await stat(out)).size;
}

/** Copies a base tree as hard links (fast; callers only add new files to the copy). */
export async function linkCopyTree(from: string, to: string): Promise<void> {
  await run('cp', ['-al', from, to]);
}

export async function readKernelRelease(baseDir: string): Promise<string> {
  return (await readFile(join(baseDir, 'kernel-release'), 'utf8')).trim();
}
