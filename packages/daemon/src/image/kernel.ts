/**
 * The guest kernel: Debian's cloud kernel, taken from its .deb (no kernel is installed on the
 * host). The meta package is resolved to its concrete package and version through apt-cache.
 */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageBuildError } from './errors.js';
import { run } from './exec.js';

export interface KernelPackage {
  /** concrete package, e.g. linux-image-6.1.0-56-cloud-amd64 */
  name: string;
  /** its Debian version, e.g. 6.1.192-2 */
  version: string;
}

export interface KernelTree {
  /** absolute path of vmlinuz-<release> */
  vmlinuz: string;
  /** kernel release (uname -r), e.g. 6.1.0-56-cloud-amd64 */
  release: string;
  /** <root>/lib/modules/<release>, with modules.dep */
  modulesDir: string;
}

/**
 * Resolves `meta` (e.g. linux-image-cloud-amd64) to the concrete package apt would install.
 * Debian's meta package pins it exactly (`Depends: linux-image-X (= V)`), so one apt-cache
 * call usually answers; otherwise the candidate version is asked for.
 */
export async function resolveKernelPackage(meta: string): Promise<KernelPackage> {
  const show = await run('apt-cache', ['show', '--no-all-versions', meta]).catch((cause: unknown) => {
    throw new ImageBuildError(`cannot resolve ${meta} (is \`apt-get update\` done?)`, { cause });
  });
  const dep = /^Depends:.*?\b(linux-image-[^\s,()]+)(?:\s*\(=\s*([^)\s]+)\))?/m.exec(show);
  const name = dep?.[1];
  if (!name) throw new ImageBuildError(`${meta} does not depend on a linux-image package (apt-cache show)`);
  if (dep[2]) return { name, version: dep[2] };
  const policy = await run('apt-cache', ['policy', name]);
  const version = /Candidate:\s*(\S+)/.exec(policy)?.[1];
  if (!version || version === '(none)') throw new ImageBuildError(`no installable version of ${name} (apt-cache policy)`);
  return { name, version };
}

/** Downloads the kernel .deb into `debDir` and unpacks it into `treeDir`, then runs depmod. */
export async function fetchKernel(pkg: KernelPackage, debDir: string, treeDir: string): Promise<KernelTree> {
  await mkdir(debDir, { recursive: true });
  const debName = (await readdir(debDir)).find((f) => f.startsWith(`${pkg.name}_`) && f.endsWith('.deb') && f.includes(pkg.version.replace(/:/g, '%3a')));
  let deb = debName ? join(debDir, debName) : '';
  if (!deb) {
    await run('apt-get', ['download', `${pkg.name}=${pkg.version}`], { cwd: debDir });
    const got = (await readdir(debDir)).find((f) => f.startsWith(`${pkg.name}_`) && f.endsWith('.deb'));
    if (!got) throw new ImageBuildError(`apt-get download ${pkg.name} produced no .deb`);
    deb = join(debDir, got);
  }
  await rm(treeDir, { recursive: true, force: true });
  await mkdir(treeDir, { recursive: true });
  await run('dpkg', ['-x', deb, treeDir]);
  const vmlinuzName = (await readdir(join(treeDir, 'boot'))).find((f) => f.startsWith('vmlinuz-'));
  if (!vmlinuzName) throw new ImageBuildError(`${deb} holds no /boot/vmlinuz-*`);
  const release = vmlinuzName.slice('vmlinuz-'.length);
  // merged-usr packages ship modules under /usr/lib, older ones under /lib
  const modulesDir = (await pathExists(join(treeDir, 'lib/modules', release)))
    ? join(treeDir, 'lib/modules', release)
    : join(treeDir, 'usr/lib/modules', release);
  if (!(await pathExists(modulesDir))) throw new ImageBuildError(`${deb} holds no module tree for ${release}`);
  await run('depmod', ['-b', treeDir, release]);
  return { vmlinuz: join(treeDir, 'boot', vmlinuzName), release, modulesDir };
}

async function pathExists(p: string): Promise<boolean> {
  try {
    await readdir(p);
    return true;
  } catch {
    return false;
  }
}
