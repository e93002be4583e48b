/**
 * The image recipe: everything that shapes the guest image, and the two hashes that key its
 * cache. The base key covers the slow layer (debootstrap + kernel); the image hash covers
 * the base key plus the agent bundle, guest scripts, node binary and initramfs recipe.
 */
import { createHash } from 'node:crypto';
import { createReadStream, realpathSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AgentBundleMissingError } from './errors.js';
import { findTool, toolSearchPath } from './host-tools.js';
import { resolveKernelPackage, type KernelPackage } from './kernel.js';
import { run } from './exec.js';

/** Bump when the builder changes what it puts into an image. */
export const BUILDER_VERSION = 3;
/** Bump when the final layer (addKilnFiles) changes what it adds; unlike BUILDER_VERSION it keeps the cached base layer. */
export const FINAL_LAYER_VERSION = 3;
export const DEFAULT_SUITE = 'trixie';
export const DEFAULT_MIRROR = 'http://deb.debian.org/debian';
export const KERNEL_META_PACKAGE = 'linux-image-cloud-amd64';
/**
 * debootstrap --include (dependencies are resolved, recommends are not): Docker 26 with its
 * compose and buildx plugins (docker.io pulls containerd and runc; tini is the guest's PID 1,
 * crun the default OCI runtime), and what coding agents reach for. Node.js LTS and npm are
 * not Debian's (20, end-of-life): the final layer adds the node kiln itself runs on.
 */
export const ROOTFS_PACKAGES: readonly string[] = [
  'docker.io', 'docker-cli', 'docker-compose', 'docker-buildx', 'crun', 'tini', 'iptables', 'kmod', 'iproute2', 'procps',
  'ca-certificates', 'git', 'curl', 'wget', 'openssh-client', 'python3', 'python3-pip', 'python3-venv', 'python3-setuptools',
  'build-essential', 'jq', 'unzip', 'xz-utils', 'less', 'sudo',
];
/** Modules the initramfs loads to reach the root (dependencies are added from modules.dep). */
export const INITRAMFS_MODULES: readonly string[] = ['virtio_mmio', 'virtio_blk', 'virtio_console', 'overlay'];
/**
 * Image-specific kernel arguments; the VMM driver appends console and TSC arguments.
 * `panic=-1` reboots at once on a panic and `reboot=t` makes every reboot a triple fault, which
 * QEMU (`-no-reboot`) turns into its own exit: the kernel otherwise picks its reboot method
 * itself, and Debian's 6.1.0-57 cloud kernel picked `efi` on a microvm without EFI, so a panicked
 * guest spun in the fallback methods forever instead of ending (seen: GUEST_UNRESPONSIVE 30 s
 * later instead of GUEST_PANIC).
 */
export const IMAGE_CMDLINE = 'rdinit=/init panic=-1 reboot=t quiet';

/** packages/daemon/guest: the guest-side scripts copied into the image */
export const DEFAULT_GUEST_DIR = fileURLToPath(new URL('../../guest/', import.meta.url));
/** packages/agent/dist/kiln-agent.cjs, built by `npm run build` */
export const DEFAULT_AGENT_BUNDLE = fileURLToPath(new URL('../../../agent/dist/kiln-agent.cjs', import.meta.url));
/** The agent's resident helper (a static binary built by `npm run build`), /opt/kiln/bin/kiln-guestctl. */
export const DEFAULT_GUESTCTL = fileURLToPath(new URL('../../../agent/dist/kiln-guestctl', import.meta.url));
/** The guest dockerd's OCI runtime front (crun + a fast libnetwork-setkey hook; a static binary built by `npm run build`), /opt/kiln/bin/kiln-oci. */
export const DEFAULT_OCI_HELPER = fileURLToPath(new URL('../../../agent/dist/kiln-oci', import.meta.url));
/** The agent's PTY helper (a static binary built by `npm run build`), /opt/kiln/bin/kiln-pty. */
export const DEFAULT_PTY_HELPER = fileURLToPath(new URL('../../../agent/dist/kiln-pty', import.meta.url));

export interface RecipeOptions {
  /** agent bundle to put at /opt/kiln/agent/kiln-agent.cjs (default DEFAULT_AGENT_BUNDLE) */
  agentBundle?: string;
  /** the agent's helper binary for /opt/kiln/bin/kiln-guestctl (default DEFAULT_GUESTCTL) */
  guestCtl?: string;
  /** the agent's PTY helper for /opt/kiln/bin/kiln-pty (default DEFAULT_PTY_HELPER) */
  ptyHelper?: string;
  /** dockerd's OCI runtime front for /opt/kiln/bin/kiln-oci (default DEFAULT_OCI_HELPER) */
  ociHelper?: string;
  /** directory of guest scripts (default DEFAULT_GUEST_DIR) */
  guestDir?: string;
  /** kernel package (default: what KERNEL_META_PACKAGE resolves to through apt-cache) */
  kernel?: KernelPackage;
  /** Debian suite (default DEFAULT_SUITE) */
  suite?: string;
  /** debootstrap --include list (default ROOTFS_PACKAGES) */
  packages?: readonly string[];
  /** node binary copied to /opt/kiln/bin/node (default process.execPath) */
  nodeBinary?: string;
  /** static busybox for the initramfs (default: busybox on PATH) */
  busybox?: string;
}

export interface Recipe {
  builderVersion: number;
  suite: string;
  packages: string[];
  kernel: KernelPackage;
  initramfsModules: string[];
  cmdline: string;
  agentBundle: { path: string; sha256: string };
  guestCtl: { path: string; sha256: string };
  ptyHelper: { path: string; sha256: string };
  ociHelper: { path: string; sha256: string };
  guest: { dir: string; files: Record<string, string> };
  node: { path: string; version: string };
  /** npm of the node distribution (<prefix>/lib/node_modules/npm), for the guest's users; null without one */
  npm: { dir: string; version: string } | null;
  busybox: { path: string; sha256: string };
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('error', reject)
      .on('data', (b) => h.update(b))
      .on('end', () => resolve(h.digest('hex')));
  });
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/** The files of the guest directory that go into the image (its README does not). */
export const GUEST_FILES: readonly string[] = ['initramfs-init', 'guest-init', 'guest-modules', 'poweroff', 'docker-warm', 'containerd.toml'];

/** sha256 of each guest file, including its exec bit (it decides whether it can run). */
async function hashGuestDir(dir: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of GUEST_FILES) {
    const p = join(dir, name);
    const st = await stat(p).catch(() => null);
    files[name] = st ? sha256(`${st.mode & 0o111 ? 'x' : '-'}:${(await readFile(p)).toString('base64')}`) : 'missing';
  }
  return files;
}

/** The npm that ships next to a node binary (<prefix>/bin/node → <prefix>/lib/node_modules/npm), or null. */
export async function findNpm(nodePath: string): Promise<{ dir: string; version: string } | null> {
  const dir = join(dirname(dirname(realpathSync(nodePath))), 'lib/node_modules/npm');
  const pkg = await readFile(join(dir, 'package.json'), 'utf8').catch(() => null);
  if (!pkg) return null;
  return { dir, version: String((JSON.parse(pkg) as { version?: unknown }).version) };
}

async function nodeVersion(path: string): Promise<string> {
  if (path === process.execPath) return process.version;
  return (await run(path, ['--version'])).trim();
}

/** Gathers every input of the image; reads files and (without opts.kernel) asks apt-cache. */
export async function resolveRecipe(opts: RecipeOptions = {}): Promise<Recipe> {
  const agentPath = opts.agentBundle ?? DEFAULT_AGENT_BUNDLE;
  const agentSha = await sha256File(agentPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new AgentBundleMissingError(agentPath);
    throw err;
  });
  const guestDir = opts.guestDir ?? DEFAULT_GUEST_DIR;
  const busyboxPath = opts.busybox ?? findTool('busybox', toolSearchPath()) ?? '/bin/busybox';
  const nodePath = opts.nodeBinary ?? process.execPath;
  const guestCtlPath = opts.guestCtl ?? DEFAULT_GUESTCTL;
  const guestCtlSha = await sha256File(guestCtlPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new AgentBundleMissingError(guestCtlPath);
    throw err;
  });
  const ptyHelperPath = opts.ptyHelper ?? DEFAULT_PTY_HELPER;
  const ptyHelperSha = await sha256File(ptyHelperPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new AgentBundleMissingError(ptyHelperPath);
    throw err;
  });
  const ociHelperPath = opts.ociHelper ?? DEFAULT_OCI_HELPER;
  const ociHelperSha = await sha256File(ociHelperPath).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new AgentBundleMissingError(ociHelperPath);
    throw err;
  });
  const [kernel, guestFiles, busyboxSha, nodeVer, npm] = await Promise.all([
    opts.kernel ?? resolveKernelPackage(KERNEL_META_PACKAGE),
    hashGuestDir(guestDir),
    sha256File(busyboxPath).catch(() => 'missing'),
    nodeVersion(nodePath),
    findNpm(nodePath),
  ]);
  return {
    builderVersion: BUILDER_VERSION,
    suite: opts.suite ?? DEFAULT_SUITE,
    packages: [...(opts.packages ?? ROOTFS_PACKAGES)],
    kernel,
    initramfsModules: [...INITRAMFS_MODULES],
    cmdline: IMAGE_CMDLINE,
    agentBundle: { path: agentPath, sha256: agentSha },
    guestCtl: { path: guestCtlPath, sha256: guestCtlSha },
    ptyHelper: { path: ptyHelperPath, sha256: ptyHelperSha },
    ociHelper: { path: ociHelperPath, sha256: ociHelperSha },
    guest: { dir: guestDir, files: guestFiles },
    node: { path: nodePath, version: nodeVer },
    npm,
    busybox: { path: busyboxPath, sha256: busyboxSha },
  };
}

/** Key of the slow base layer: suite, package list, kernel package and builder version. */
export function baseKey(r: Recipe): string {
  const input = { v: r.builderVersion, suite: r.suite, packages: r.packages, kernel: r.kernel };
  return sha256(JSON.stringify(input)).slice(0, 16);
}

/** Hash of the whole image: the base key plus the per-image inputs (paths are not hashed). */
export function imageHash(r: Recipe): string {
  const input = {
    base: baseKey(r),
    finalLayer: FINAL_LAYER_VERSION,
    agent: r.agentBundle.sha256,
    guestCtl: r.guestCtl.sha256,
    ptyHelper: r.ptyHelper.sha256,
    ociHelper: r.ociHelper.sha256,
    guest: r.guest.files,
    node: r.node.version,
    npm: r.npm?.version ?? null,
    busybox: r.busybox.sha256,
    initramfsModules: r.initramfsModules,
    cmdline: r.cmdline,
  };
  return sha256(JSON.stringify(input)).slice(0, 16);
}

/** Hash of everything that shapes the image built with `opts`. */
export async function recipeHash(opts: RecipeOptions = {}): Promise<string> {
  return imageHash(await resolveRecipe(opts));
}
