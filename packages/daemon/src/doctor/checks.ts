/**
 * `kilnd doctor`: what the host offers kiln and what is missing, each gap with its fix. Every
 * check is read-only (it creates nothing; it reads files, runs `--version`s and runs the VMM
 * launcher without arguments, which it refuses).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync, statSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { chooseAccel } from '../vmm/accel.js';
import { detectCgroups } from '../vmm/cgroup.js';
import { LAUNCHER_PATH, VMM_USER } from '../vmm/jail.js';
import { decideJail, insecureNoJailFromEnv } from '../vmm/jail-policy.js';
import { readManifest } from '../image/manifest.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about a warn/fail (absent when ok). */
  fix?: string;
}

export interface DoctorOptions {
  /** kilnd state directory. Default /var/lib/kiln. */
  stateDir: string;
  /** QEMU binary. Default qemu-system-x86_64. */
  qemuBinary?: string;
  /** Free space below which the disk check warns. Default 20 GiB. */
  minFreeGiB?: number;
  /** kilnd runs with --insecure-no-jail. Default $KILN_INSECURE_NO_JAIL. */
  insecureNoJail?: boolean;
}

const GiB = 1024 ** 3;
const SETUP = 'run scripts/setup.sh';

function run(file: string, args: string[]): string | null {
  try {
    return execFileSync(file, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch {
    return null;
  }
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

const ok = (name: string, detail: string): CheckResult => ({ name, status: 'ok', detail });
const gap = (name: string, status: CheckStatus, detail: string, fix: string): CheckResult => ({ name, status, detail, fix });

export function checkAccel(): CheckResult {
  const c = chooseAccel('auto');
  return c.accel === 'kvm'
    ? ok('accelerator', `KVM: ${c.reason}`)
    : gap('accelerator', 'warn', `TCG (emulation, slower): ${c.reason}`, 'use a host whose CPU offers vmx/svm to guests (bare metal or nested virtualisation enabled) for KVM');
}

export function checkQemu(binary: string): CheckResult {
  const out = run(binary, ['--version']);
  const v = out ? /version\s+(\d+)\.(\d+)\.?(\d*)/.exec(out) : null;
  if (!v) return gap('qemu', 'fail', `${binary} not found`, `${SETUP} (qemu-system-x86 from bookworm-backports)`);
  const major = Number(v[1]);
  const help = run(binary, ['-help']) ?? '';
  const version = `${v[1]}.${v[2]}${v[3] ? `.${v[3]}` : ''}`;
  if (major < 10) return gap('qemu', 'fail', `QEMU ${version}: older than 10 (cannot restore from a read-only template RAM file, nor migrate to file: under seccomp)`, `${SETUP} (bookworm-backports)`);
  if (!help.includes('-sandbox')) return gap('qemu', 'fail', `QEMU ${version} built without seccomp (-sandbox)`, 'install a QEMU built with libseccomp');
  return ok('qemu', `QEMU ${version} with -sandbox (seccomp)`);
}

export function checkSeccomp(): CheckResult {
  const actions = read('/proc/sys/kernel/seccomp/actions_avail');
  const status = read('/proc/self/status') ?? '';
  if (!actions || !/^Seccomp:/m.test(status)) return gap('seccomp', 'fail', 'the kernel has no seccomp filter support', 'use a kernel with CONFIG_SECCOMP_FILTER=y');
  return ok('seccomp', `seccomp filters available (actions: ${actions.trim()})`);
}

export function checkCgroups(): CheckResult {
  const mode = detectCgroups();
  if (mode.kind === 'v2') {
    const ctrls = (read(join(mode.root, 'cgroup.controllers')) ?? '').trim().split(/\s+/);
    const missing = ['memory', 'cpu', 'pids'].filter((c) => !ctrls.includes(c));
    if (missing.length) return gap('cgroups', 'fail', `cgroup v2 without ${missing.join(', ')}`, `enable the ${missing.join(', ')} controller(s) in the root cgroup`);
    return ok('cgroups', `cgroup v2 with ${ctrls.join(' ')}`);
  }
  if (mode.kind === 'v1') {
    return gap('cgroups', 'warn', 'cgroup v1 (memory, cpu, pids hierarchies): limits apply; v2 is preferred (memory.swap.max, one tree)', 'boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2)');
  }
  return gap('cgroups', 'fail', mode.reason, 'mount cgroup2 on /sys/fs/cgroup with the memory, cpu and pids controllers');
}

export function checkNamespaces(): CheckResult {
  const missing = ['mnt', 'pid', 'net'].filter((n) => !existsSync(`/proc/self/ns/${n}`));
  if (missing.length) return gap('namespaces', 'fail', `no ${missing.join(', ')} namespaces`, 'use a kernel with CONFIG_NAMESPACES (mount, PID, network)');
  const maxUserNs = Number(read('/proc/sys/user/max_user_namespaces') ?? '0');
  return ok('namespaces', `mount, PID and network namespaces; user namespaces ${maxUserNs > 0 ? `enabled (max ${maxUserNs}; used by dockerd's userns-remap inside the guest)` : 'disabled on the host (not needed by kiln)'}`);
}

/**
 * The VMM launcher (vmm/jail.ts) that `npm run build` compiles. Run once without arguments: it
 * refuses them (status 97, a usage line) before doing anything, which shows the binary runs here.
 */
export function checkLauncher(path = LAUNCHER_PATH): CheckResult {
  const fix = 'npm run build (compiles packages/daemon/native/kiln-vmm-launch.c; needs gcc and libc6-dev)';
  if (!existsSync(path)) return gap('launcher', 'fail', `no VMM launcher at ${path}`, fix);
  try {
    if (!statSync(path).isFile()) return gap('launcher', 'fail', `${path} is not a file`, fix);
    accessSync(path, constants.X_OK);
  } catch {
    return gap('launcher', 'fail', `${path} is not executable`, fix);
  }
  const r = spawnSync(path, [], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 97 || !r.stderr.startsWith('kiln-vmm-launch: usage')) {
    const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : `status ${r.status}: ${r.stderr.trim()}`;
    return gap('launcher', 'fail', `${path} does not run here (${why})`, fix);
  }
  return ok('launcher', `${path} (jails each QEMU: namespaces, pivot_root, uid change, no capabilities)`);
}

export function checkVmmUser(): CheckResult {
  const entry = (read('/etc/passwd') ?? '').split('\n').find((l) => l.startsWith(`${VMM_USER}:`));
  if (!entry) return gap('vmm-user', 'warn', `no ${VMM_USER} user (kilnd creates it at start)`, `useradd --system --user-group --no-create-home --shell /usr/sbin/nologin ${VMM_USER}`);
  return ok('vmm-user', `${VMM_USER} uid ${entry.split(':')[2]} (QEMU runs as it, jailed)`);
}

/** Whether kilnd would jail QEMU, run it unjailed (--insecure-no-jail) or refuse VMs. */
export function checkJail(insecureNoJail: boolean, uid = process.getuid?.()): CheckResult {
  const d = decideJail({ uid, insecureNoJail });
  if (d.mode === 'jailed') return ok('jail', d.reason);
  if (d.mode === 'insecure-no-jail') return gap('jail', 'warn', `INSECURE: ${d.reason}`, 'run kilnd as root without --insecure-no-jail');
  return gap('jail', 'fail', d.reason, 'run kilnd as root (or, knowingly, with --insecure-no-jail)');
}

export function checkNftables(): CheckResult {
  const v = run('nft', ['--version']);
  if (!v) return gap('nftables', 'fail', 'nft not found', `${SETUP} (nftables)`);
  if (run('nft', ['list', 'tables']) === null) return gap('nftables', 'fail', `${v.trim()} but the kernel refuses nftables`, 'load nf_tables (modprobe nf_tables) and run as root');
  return ok('nftables', v.trim());
}

export function checkDisk(stateDir: string, minFreeGiB: number): CheckResult {
  let dir = stateDir;
  while (!existsSync(dir) && dir !== '/') dir = join(dir, '..');
  const s = statfsSync(dir);
  const free = (s.bavail * s.bsize) / GiB;
  const detail = `${free.toFixed(1)} GiB free under ${dir}`;
  return free >= minFreeGiB ? ok('disk', detail) : gap('disk', 'warn', `${detail} (each sandbox's scratch disk may grow to its diskGiB)`, `free space or move the state dir (--state-dir) to a larger disk (want ≥ ${minFreeGiB} GiB)`);
}

export async function checkImage(stateDir: string): Promise<CheckResult> {
  const images = join(stateDir, 'images');
  const dirs = existsSync(images) ? readdirSync(images).filter((d) => /^[0-9a-f]{16}$/.test(d)) : [];
  const good: string[] = [];
  const bad: string[] = [];
  for (const d of dirs) {
    const m = await readManifest(join(images, d));
    if (m && m.hash === d && statSync(m.rootfs).size === m.rootfsBytes) good.push(d);
    else if (m || existsSync(join(images, d, 'manifest.json'))) bad.push(d);
  }
  if (good.length === 0) return gap('image', 'fail', bad.length ? `no intact image (${bad.join(', ')} do not match their manifests)` : `no guest image under ${images}`, 'kilnd image build');
  const detail = `${good.length} image(s) intact (manifest hash = directory, root image size as recorded)${bad.length ? `; damaged: ${bad.join(', ')}` : ''}`;
  return bad.length ? gap('image', 'warn', detail, `remove the damaged image directories, then kilnd image build`) : ok('image', detail);
}

export function checkTemplates(stateDir: string): CheckResult {
  const dir = join(stateDir, 'templates');
  const names: string[] = [];
  for (const k of existsSync(dir) ? readdirSync(dir) : []) {
    if (k.startsWith('.')) continue;
    const m = read(join(dir, k, 'manifest.json'));
    if (m) names.push((JSON.parse(m) as { name?: string }).name ?? k);
  }
  if (names.length === 0) return gap('templates', 'warn', 'no template snapshots: every sandbox cold-boots', 'kilnd image build (also makes the default template)');
  return ok('templates', `${names.length} template(s): ${names.join(', ')}`);
}

/** The sandbox proxy as the environment configures it (docs/ports.md): its URL pattern, or off. */
export function checkProxy(env: NodeJS.ProcessEnv = process.env): CheckResult {
  const listen = env.KILN_PROXY_LISTEN;
  if (!listen) return ok('proxy', 'off (kilnd --proxy-listen HOST:PORT serves sandbox ports; docs/ports.md)');
  const domain = env.KILN_PROXY_DOMAIN ?? 'localhost';
  const tls = !!(env.KILN_PROXY_TLS_CERT ?? env.KILN_TLS_CERT);
  const port = listen.split(':').pop();
  const base = env.KILN_PROXY_PUBLIC_URL ?? `${tls ? 'https' : 'http'}://${domain}:${port}`;
  const u = new URL(base);
  return ok('proxy', `${u.protocol}//{port}-{sandboxId}.${u.hostname}${u.port ? `:${u.port}` : ''}/ (listening on ${listen})`);
}

export async function runDoctor(o: DoctorOptions): Promise<CheckResult[]> {
  const binary = o.qemuBinary ?? 'qemu-system-x86_64';
  return [
    checkAccel(),
    checkQemu(binary),
    checkSeccomp(),
    checkCgroups(),
    checkNamespaces(),
    checkLauncher(),
    checkVmmUser(),
    checkJail(o.insecureNoJail ?? insecureNoJailFromEnv()),
    checkNftables(),
    checkDisk(o.stateDir, o.minFreeGiB ?? 20),
    await checkImage(o.stateDir),
    checkTemplates(o.stateDir),
    checkProxy(),
  ];
}
