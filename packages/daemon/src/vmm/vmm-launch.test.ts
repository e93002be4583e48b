/**
 * The real launcher (native/kiln-vmm-launch.c) building a real jail, with a probe command in
 * QEMU's place: what the probe is (user, groups, capabilities, no_new_privs, PID namespace),
 * what it sees (root, /dev, mounts, fds, rlimits), how the launcher ends, and that each bad
 * input stops it before the exec with status 97 and a line naming it. Needs root, `ip` (a
 * netns holding a persistent TAP) and the built launcher.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { pidExists, readCmdline, sleep } from '../util/proc.js';
import { settledFds } from '../testing/proc-fds.js';
import { TAP_FD } from './host-fds.js';
import { ensureVmmIdentity, jailCommand, jailedChildPid, LAUNCHER_PATH, type JailPlan, type VmmIdentity } from './jail.js';

function skipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (namespaces, mounts, the VMM user)';
  if (!existsSync(LAUNCHER_PATH)) return `${LAUNCHER_PATH} not built (npm run build)`;
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'needs ip (iproute2) for the test netns and TAP';
  }
  return null;
}

const skip = skipReason();

const MiB = 1024 * 1024;

describe('kiln-vmm-launch with a jail', { skip: skip ?? false }, () => {
  const hex = randomBytes(4).toString('hex');
  const netns = `kiln-lt-${hex}`;
  const tap = `ktlt${hex}`;
  let dir = '';
  let identity: VmmIdentity = { uid: -1, gid: -1 };
  let roFile = '';
  let rwDir = '';
  let marker = '';
  let jails = 0;
  const children: ChildProcess[] = [];

  before(() => {
    identity = ensureVmmIdentity();
    dir = mkdtempSync('/tmp/kiln-launch-');
    roFile = join(dir, 'kernel');
    writeFileSync(roFile, 'read-only\n');
    rwDir = join(dir, 'run');
    mkdirSync(rwDir, { mode: 0o700 });
    chownSync(rwDir, identity.uid, identity.gid);
    marker = join(rwDir, 'ran');
    execFileSync('ip', ['netns', 'add', netns]);
    execFileSync('ip', ['-n', netns, 'tuntap', 'add', 'dev', tap, 'mode', 'tap']);
  });

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await sleep(50);
    try {
      execFileSync('ip', ['netns', 'del', netns], { stdio: 'ignore' });
    } catch {
      // never created
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** A plan like prepareJail's, on a fresh jail mountpoint. */
  const plan = (over: Partial<JailPlan> = {}): JailPlan => {
    const root = join(dir, `jail-${jails++}`);
    mkdirSync(root, { mode: 0o700 });
    return {
      root,
      readOnly: [roFile],
      readWrite: [rwDir],
      hostDevices: { tap: null, kvm: null },
      cgroupProcs: [],
      rlimits: { fsizeBytes: 64 * MiB, nofile: 256 },
      netns,
      identity,
      ...over,
    };
  };

  /** Starts `argv` in a jail; resolves with the launcher and the probe's host pid once it exec'd. */
  async function startProbe(p: JailPlan, argv: string[]): Promise<{ launcher: ChildProcess; pid: number; stderr: () => string }> {
    const { file, args } = jailCommand(p, argv);
    const launcher = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(launcher);
    let stderr = '';
    launcher.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    for (let i = 0; i < 250; i++) {
      const pid = jailedChildPid(launcher.pid ?? 0);
      if (pid !== null && readCmdline(pid)?.[0] === argv[0]) return { launcher, pid, stderr: () => stderr };
      if (launcher.exitCode !== null || launcher.signalCode !== null) break;
      await sleep(20);
    }
    throw new Error(`the probe did not start: ${stderr}`);
  }

  const ended = (c: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve({ code: c.exitCode, signal: c.signalCode })
      : new Promise((resolve) => c.once('exit', (code, signal) => resolve({ code, signal })));

  test('the probe: VMM user, no groups, no capabilities, no_new_privs, pid 1; sees only its jail, stdio and its TAP', async () => {
    const { launcher, pid } = await startProbe(plan({ hostDevices: { tap, kvm: null } }), ['/usr/bin/sleep', '30']);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => new RegExp(`^${name}:[\\t ]*(.*)$`, 'm').exec(status)?.[1]?.trim().split(/\s+/).join(' ');
    assert.equal(field('Uid'), Array(4).fill(identity.uid).join(' '));
    assert.equal(field('Gid'), Array(4).fill(identity.gid).join(' '));
    assert.equal(field('Groups'), '');
    for (const set of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.equal(field(set), '0000000000000000', set);
    assert.equal(field('NoNewPrivs'), '1');
    assert.equal(field('NSpid'), `${pid} 1`, 'pid 1 of its own PID namespace');

    // stdio and the TAP queue, attached to the TAP of the netns; nothing else
    assert.deepEqual([...(await settledFds(pid)).keys()].sort(), ['0', '1', '2', String(TAP_FD)]);
    assert.match(readFileSync(`/proc/${pid}/fdinfo/${TAP_FD}`, 'utf8'), new RegExp(`^iff:\\s+${tap}$`, 'm'));

    // its root: the merged-/usr symlinks the host has, dev, proc, tmp (which holds this test's
    // files), usr; its /dev: three nodes
    const links = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'].filter((l) => lstatSync(`/${l}`, { throwIfNoEntry: false })?.isSymbolicLink());
    assert.deepEqual(readdirSync(`/proc/${pid}/root`).sort(), [...links, 'dev', 'proc', 'tmp', 'usr'].sort());
    assert.deepEqual(readdirSync(`/proc/${pid}/root/dev`).sort(), ['null', 'urandom', 'zero']);

    // mount flags: the root and /usr read-only; its files noexec, the ro one read-only
    const mounts = new Map(readFileSync(`/proc/${pid}/mountinfo`, 'utf8').trim().split('\n').map((l) => {
      const f = l.split(' ');
      return [f[4] ?? '', (f[5] ?? '').split(',')] as const;
    }));
    const flags = (path: string) => mounts.get(path)?.filter((o) => ['ro', 'rw', 'nosuid', 'nodev', 'noexec'].includes(o)).join(',');
    assert.equal(flags('/'), 'ro,nosuid');
    assert.equal(flags('/usr'), 'ro,nosuid,nodev');
    assert.equal(flags(roFile), 'ro,nosuid,nodev,noexec');
    assert.equal(flags(rwDir), 'rw,nosuid,nodev,noexec');
    assert.equal(flags('/tmp'), 'rw,nosuid,nodev,noexec');
    assert.equal(flags('/dev'), 'rw,nosuid,noexec');
    assert.equal(flags('/proc'), 'rw,nosuid,nodev,noexec');
    assert.equal(mounts.size, 10, [...mounts.keys()].join(' '));

    const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
    assert.match(limits, new RegExp(`Max file size\\s+${64 * MiB}\\s+${64 * MiB}`));
    assert.match(limits, /Max open files\s+256\s+256/);

    // the probe dies with its launcher (parent-death signal, set again after the uid change)
    launcher.kill('SIGKILL');
    for (let i = 0; i < 100 && pidExists(pid); i++) await sleep(20);
    assert.equal(pidExists(pid), false, 'the probe outlived its launcher');
  });

  test('as the VMM user inside, a --ro path is read-only and a --rw path writable', () => {
    const script = `echo x > "$1/probe" && echo rw=ok; if echo y >> "$2" 2>/dev/null; then echo ro=writable; else echo ro=refused; fi; cat "$2"`;
    const { file, args } = jailCommand(plan(), ['/bin/sh', '-c', script, 'probe', rwDir, roFile]);
    const r = spawnSync(file, args, { encoding: 'utf8', timeout: 10_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'rw=ok\nro=refused\nread-only\n');
    assert.equal(statSync(join(rwDir, 'probe')).uid, identity.uid);
    assert.equal(readFileSync(roFile, 'utf8'), 'read-only\n');
  });

  test('the launcher ends as the probe did: its exit code, or killed by its signal (and says so)', async () => {
    const { file, args } = jailCommand(plan(), ['/bin/sh', '-c', 'exit 7']);
    assert.equal(spawnSync(file, args, { timeout: 10_000 }).status, 7);
    const { launcher, pid, stderr } = await startProbe(plan(), ['/usr/bin/sleep', '30']);
    process.kill(pid, 'SIGKILL');
    assert.deepEqual(await ended(launcher), { code: null, signal: 'SIGKILL' });
    assert.equal(stderr(), 'kiln-vmm-launch: /usr/bin/sleep killed by SIGKILL\n');
  });

  test('each bad input: status 97, one line naming it, and nothing exec\'d', () => {
    const base = () => jailCommand(plan(), ['/usr/bin/touch', marker]).args;
    const swap = (args: string[], opt: string, value: string) => args.map((a, i) => (args[i - 1] === opt ? value : a));
    const cases: Array<[string, string[], RegExp]> = [
      ['a missing --ro path', swap(base(), '--ro', join(dir, 'missing')), /^--ro \S+\/missing: No such file or directory$/],
      ['a relative --rw path', swap(base(), '--rw', 'run'), /^--rw run: not an absolute path/],
      ['an unknown option', ['--bogus', '1', ...base()], /^unknown option --bogus: Invalid argument$/],
      ['uid 0', swap(base(), '--uid', '0'), /^--uid 0: the jail needs a non-root uid/],
      ['a uid that is no number', swap(base(), '--uid', 'kiln-vmm'), /^--uid kiln-vmm: not a number/],
      ['--ro without --root', ['--ro', roFile, '--', '/usr/bin/touch', marker], /^--uid, --gid, --ro and --rw need --root/],
      ['a missing netns', swap(base(), '--netns', `${netns}-none`), new RegExp(`^netns ${netns}-none: open /run/netns/${netns}-none: No such file or directory$`)],
      ['a missing TAP', ['--tap', 'ktnone', ...base()], /^TAP ktnone: No such device$/],
      ['a missing jail mountpoint', swap(base(), '--root', join(dir, 'nowhere')), /^mount tmpfs on \S+\/nowhere: No such file or directory$/],
      ['a missing cgroup', ['--cgroup-procs', join(dir, 'no-cgroup', 'cgroup.procs'), ...base()], /^join cgroup \S+\/no-cgroup\/cgroup\.procs: No such file or directory$/],
      ['a command that does not exist', [...base().slice(0, -2), '/usr/bin/kiln-no-such-binary'], /^exec \/usr\/bin\/kiln-no-such-binary: No such file or directory$/],
    ];
    for (const [what, args, message] of cases) {
      const r = spawnSync(LAUNCHER_PATH, args, { encoding: 'utf8', timeout: 10_000 });
      assert.equal(r.status, 97, `${what}: status (stderr: ${r.stderr})`);
      const lines = r.stderr.split('\n').filter(Boolean);
      assert.equal(lines.length, 1, `${what}: ${r.stderr}`);
      assert.match(lines[0]?.replace(/^kiln-vmm-launch: /, '') ?? '', message, what);
      assert.ok(lines[0]?.startsWith('kiln-vmm-launch: '), what);
      assert.equal(existsSync(marker), false, `${what}: the command ran`);
    }
    // the missing TAP was not created by TUNSETIFF either
    assert.throws(() => execFileSync('ip', ['-n', netns, 'link', 'show', 'ktnone'], { stdio: 'pipe' }));
    // and the same plan with good inputs does run the command
    assert.equal(spawnSync(LAUNCHER_PATH, base(), { timeout: 10_000 }).status, 0);
    assert.ok(existsSync(marker));
  });
});
