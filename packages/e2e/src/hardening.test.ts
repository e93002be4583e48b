/**
 * The VMM boundary on real microVMs (vmm/jail.ts, docs/hardening.md). Two sandboxes, both
 * restored from the default template (templates work under the jail): A is the attacker, B's
 * exec latency is the neighbour's yardstick. (A cold boot is avoided: on 2 loaded cores a cold
 * dockerd sometimes times out starting containerd.)
 * - each QEMU: not root, no capabilities, NoNewPrivs 1, Seccomp 2, in kiln/<id> cgroups with
 *   the configured limits and rlimits, only allowed fds (its TAP as the inherited fd 3), its
 *   root is the jail (no device node: TAP and /dev/kvm are opened by the launcher);
 * - from inside A: filling the scratch disk fails in the guest (ENOSPC) and the host disk grows
 *   by at most the disk size; a memory hog beyond guest RAM is killed in the guest; a console
 *   flood leaves the stored log within its cap and the collector counts what it dropped; a fork
 *   bomb hoses only A, and the CPU balancer demotes A, never B. During each: kilnd answers and
 *   B runs commands. (How fast B and kilnd answer, and kilnd's CPU, are measurements on a
 *   shared machine: `npm run bench -- neighbour` reports them, bench/neighbour.ts.)
 * - the guest sees no host path, host socket or host Docker; `kilnd doctor` reports TCG and why.
 */
import { after, before, describe } from 'node:test';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, readlinkSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DaemonFixture, integrationSkipReason } from './harness.js';

/** kilnd's TCG translation cache (packages/daemon/src/vmm/tb-size.ts: 512 unless $KILN_TCG_TB_SIZE_MIB says otherwise). */
const TCG_TB_SIZE_MIB = Number(process.env.KILN_TCG_TB_SIZE_MIB || 512);
/** A 1024 MiB sandbox's QEMU cgroup limit: guest RAM + VMM overhead + TCG tb-size. */
const QEMU_LIMIT_MIB = 1024 + 384 + TCG_TB_SIZE_MIB;

const skip = integrationSkipReason();
const MiB = 1024 * 1024;
/** Small enough that 20 s of console flood (read at 8 KiB/s after a 64 KiB burst) overflows it. */
const LOG_CAP = 64 * 1024;
/** Bytes a directory tree really occupies on disk (allocated blocks, so sparse files count as stored). */
function allocatedBytes(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.blocks * 512;
  return readdirSync(path).reduce((n, name) => n + allocatedBytes(join(path, name)), st.blocks * 512);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function status(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

/** controller → cgroup directory of `pid` (v1 hierarchies or the v2 tree). */
function cgroupDirs(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const [, ctrls, path] = line.split(':') as [string, string, string];
    if (ctrls === '' && existsSync('/sys/fs/cgroup/cgroup.controllers')) out.v2 = join('/sys/fs/cgroup', path);
    for (const c of ctrls.split(',')) if (['memory', 'cpu', 'pids'].includes(c)) out[c] = join('/sys/fs/cgroup', c, path);
  }
  return out;
}

const dirnameOf = (p: string): string => (p === '' ? '' : p.slice(0, p.lastIndexOf('/')));
const cg = (dir: string | undefined, file: string): string => readFileSync(join(dir ?? '/nonexistent', file), 'utf8').trim();

/**
 * Unix socket inode → bound path, from QEMU's network namespace and the host's (a connection
 * kilnd made from the host namespace is accounted there).
 */
function unixPaths(pid: number): Map<string, string> {
  const m = new Map<string, string>();
  for (const file of [`/proc/${pid}/net/unix`, '/proc/self/net/unix']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[6]) m.set(f[6], f[7] ?? '');
    }
  }
  return m;
}

describe('hardened VMM boundary on real microVMs', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('hardening');
  let a = '';
  let b = '';

  const sh = async (id: string, shell: string, timeoutMs = 120_000): Promise<{ out: string; code: number | null }> => {
    let out = '';
    let code: number | null = null;
    const body = { shell, timeoutMs };
    for await (const ev of fx.client.exec(id, body)) {
      if (ev.type === 'stdout' || ev.type === 'stderr') out += Buffer.from(ev.data, 'base64').toString();
      else if (ev.type === 'exit') code = ev.exitCode;
      else if (ev.type === 'error') throw new Error(`${ev.error.code}: ${ev.error.message}`);
    }
    return { out, code };
  };
  const pidOf = async (id: string): Promise<number> => {
    const v = (await fx.client.call('GET', `/v1/sandboxes/${id}`)) as { vm: { pid: number } | null };
    assert.ok(v.vm, `${id} has a VM`);
    return v.vm.pid;
  };
  /**
   * Starts `start()` in A and, while it runs (from 4.5 s in, when the CPU balancer has had time
   * to demote a spinning A), checks that kilnd answers and B runs a command, at least once and
   * then every round until the attack ends. Returns the attack.
   */
  const neighbourKeepsWorking = async <T>(what: string, start: () => Promise<T>): Promise<T> => {
    const attack = start();
    let done = false;
    const settled = attack.finally(() => (done = true));
    await sleep(4500);
    let rounds = 0;
    do {
      assert.deepEqual(await fx.client.call('GET', '/v1/health'), { ok: true }, `${what}: kilnd answers`);
      assert.equal((await sh(b, 'echo neighbour-ok')).out.trim(), 'neighbour-ok', `${what}: B runs commands`);
      rounds++;
    } while (!done && rounds < 6);
    await settled.catch(() => undefined);
    process.stderr.write(`${what}: kilnd and B answered ${rounds} round(s) during the attack\n`);
    return attack;
  };

  before(async () => {
    await fx.start({ KILN_GUEST_LOG_MAX_BYTES: String(LOG_CAP) });
    const [sa, sb] = await Promise.all([fx.client.create({ labels: { role: 'attacker' } }), fx.client.create({ labels: { role: 'neighbour' } })]);
    a = sa.id;
    b = sb.id;
    process.stderr.write(`sandboxes under test: A=${a} B=${b}\n`);
  });
  after(async () => {
    await fx.close();
  });
  const t = (name: string, fn: () => Promise<void>) => fx.test(name, fn);

  t('both were restored from the template under the jail', async () => {
    for (const id of [a, b]) {
      const ev = (await fx.client.events(id)).map((e) => e.type);
      assert.ok(ev.includes('vm-restored'), `${id}'s events: ${ev.join(',')}`);
    }
  });

  t('each QEMU runs unprivileged, seccomp-confined, with no_new_privs and no capabilities', async () => {
    for (const id of [a, b]) {
      const st = status(await pidOf(id));
      for (const f of ['Uid', 'Gid']) for (const v of (st[f] ?? '0').split(/\s+/)) assert.notEqual(v, '0', `${id} ${f}: ${st[f]}`);
      assert.equal(st.Seccomp, '2', `${id} Seccomp`);
      assert.equal(st.NoNewPrivs, '1', `${id} NoNewPrivs`);
      for (const c of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) assert.match(st[c] ?? '', /^0+$/, `${id} ${c}`);
      assert.equal(st.Groups, '', `${id} supplementary groups`);
    }
  });

  t('each QEMU is in its own cgroup with the configured limits and rlimits', async () => {
    for (const [id, diskGiB] of [[a, 10], [b, 10]] as const) {
      const pid = await pidOf(id);
      const dirs = cgroupDirs(pid);
      const expectMem = String(QEMU_LIMIT_MIB * MiB);
      // 2 vCPUs = 2 cores per period.
      const expectQuota = '200000';
      if (dirs.v2) {
        assert.ok(dirs.v2.endsWith(`/kiln/${id}`), dirs.v2);
        assert.equal(cg(dirs.v2, 'memory.max'), expectMem);
        assert.equal(cg(dirs.v2, 'cpu.max'), `${expectQuota} 100000`);
        assert.equal(cg(dirname(dirs.v2), 'cpu.max'), 'max 100000');
        assert.equal(cg(dirname(dirs.v2), 'cpu.weight'), '50');
        assert.equal(cg(dirs.v2, 'pids.max'), '256');
      } else {
        for (const c of ['memory', 'cpu', 'pids']) assert.ok(dirs[c]?.endsWith(`/kiln/${id}`), `${c}: ${dirs[c]}`);
        assert.equal(cg(dirs.memory, 'memory.limit_in_bytes'), expectMem);
        assert.equal(cg(dirs.cpu, 'cpu.cfs_quota_us'), expectQuota);
        assert.equal(cg(dirs.cpu, 'cpu.cfs_period_us'), '100000');
        // the parent of all VMs: no shared quota, half the default weight
        assert.equal(cg(dirname(dirs.cpu ?? ''), 'cpu.cfs_quota_us'), '-1');
        assert.equal(cg(dirname(dirs.cpu ?? ''), 'cpu.shares'), '512');
        assert.equal(cg(dirs.pids, 'pids.max'), '256');
      }
      const limits = readFileSync(`/proc/${pid}/limits`, 'utf8');
      const fsize = Number(/Max file size\s+(\d+)/.exec(limits)?.[1]);
      assert.equal(fsize, diskGiB * 1024 * MiB + 256 * MiB, `${id} RLIMIT_FSIZE`);
      assert.match(limits, /Max open files\s+1024\s+1024/);
    }
  });

  t('each QEMU holds only the expected file descriptors', async () => {
    for (const id of [a, b]) {
      const pid = await pidOf(id);
      const runDir = join(fx.stateDir, 'sandboxes', id);
      const sockets = unixPaths(pid);
      const tap = `kt${id.slice(3, 15)}`;
      const bad: string[] = [];
      let tapFds = 0;
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        const sock = /^socket:\[(\d+)\]$/.exec(target);
        // the TAP queue kilnd's launcher opened and QEMU inherited: fd 3, attached to this
        // sandbox's TAP (its path shows relative to the launcher's /dev mount)
        const isTap = /^(\/dev)?\/net\/tun$/.test(target) && fd === '3' && new RegExp(`^iff:\\s+${tap}$`, 'm').test(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
        if (isTap) tapFds++;
        const ok =
          target === '/dev/null' ||
          isTap ||
          /^anon_inode:(\[(eventfd|signalfd|eventpoll|timerfd)\]|kvm-vm|kvm-vcpu.*)$/.test(target) ||
          target.startsWith(`${runDir}/`) ||
          target.startsWith(`${fx.stateDir}/images/`) ||
          target.startsWith(`${fx.stateDir}/templates/`) ||
          /^\/var\/lib\/kiln\/(images|templates)\//.test(target) ||
          // a unix socket that is QEMU's own (bound in its VMM dir) or unnamed (socketpair, accepted)
          (sock !== null && sockets.has(sock[1] ?? '') && ['', join(runDir, 'vmm')].includes(dirnameOf(sockets.get(sock[1] ?? '') ?? '')));
        if (!ok) bad.push(`${fd} -> ${target}${sock ? ` (${sockets.get(sock[1] ?? '') ?? 'not unix'})` : ''}`);
      }
      assert.deepEqual(bad, [], `${id}: unexpected fds of QEMU pid ${pid}`);
      assert.equal(tapFds, 1, `${id}: QEMU holds its TAP as the inherited fd 3`);
      // the TAP is root's: QEMU could not attach to it by itself (owner -1 = only CAP_NET_ADMIN)
      assert.equal(execFileSync('ip', ['netns', 'exec', `kiln-${id.slice(3, 15)}`, 'cat', `/sys/class/net/${tap}/owner`], { encoding: 'utf8' }).trim(), '-1');
    }
  });

  t("each QEMU's root directory is its jail: only /usr, /dev, /proc, /tmp and its own files", async () => {
    for (const id of [a, b]) {
      const pid = await pidOf(id);
      const root = `/proc/${pid}/root`;
      assert.notEqual(statSync(root).ino, statSync('/').ino, 'root differs from the host root');
      const top = readdirSync(root).sort();
      for (const name of top) assert.ok(['bin', 'dev', 'lib', 'lib32', 'lib64', 'libx32', 'proc', 'sbin', 'tmp', 'usr', 'var'].includes(name), `unexpected /${name} in the jail of ${id}`);
      for (const hidden of ['etc', 'root', 'home', 'run']) assert.equal(existsSync(join(root, hidden)), false, `/${hidden} is visible to ${id}`);
      assert.equal(existsSync(join(root, fx.stateDir, 'kiln.db')), false, 'the store is visible');
      assert.equal(existsSync(join(root, fx.socket)), false, "kilnd's socket is visible");
      const other = id === a ? b : a;
      assert.equal(existsSync(join(root, fx.stateDir, 'sandboxes', other)), false, "the other sandbox's run dir is visible");
      assert.ok(existsSync(join(root, fx.stateDir, 'sandboxes', id, 'vmm', 'qmp.sock')), 'its own sockets are there');
      // of its run dir it sees only its own directory and its disk: not vmm.log, not the resolver's files
      assert.deepEqual(readdirSync(join(root, fx.stateDir, 'sandboxes', id)).map((n) => n.replace(/^scratch\.(img|qcow2)$/, 'scratch')).sort(), ['scratch', 'vmm']);
      // no device node besides these: the TAP (and /dev/kvm under KVM) arrive as inherited fds
      assert.deepEqual(readdirSync(join(root, 'dev')).sort(), ['null', 'urandom', 'zero']);
      // its own PID namespace: QEMU is pid 1 there and sees no other process
      assert.deepEqual(readdirSync(join(root, 'proc')).filter((n) => /^\d+$/.test(n)), ['1']);
      // the run dir is root's alone; the VMM's directory, sealed after start-up, is root's too
      const run = statSync(join(fx.stateDir, 'sandboxes', id));
      assert.deepEqual([run.uid, run.mode & 0o777], [0, 0o700], 'run dir is private to root');
      const vmm = statSync(join(fx.stateDir, 'sandboxes', id, 'vmm'));
      assert.deepEqual([vmm.uid, vmm.mode & 0o777], [0, 0o711], "the VMM's directory is sealed");
    }
  });

  t('the guest sees no host path, host socket or host Docker', async () => {
    const r = await sh(a, [
      `test ! -e ${fx.socket} && test ! -e ${fx.stateDir} && echo no-host-paths`,
      "grep -Eq ' (9p|virtiofs|nfs|fuse)' /proc/mounts || echo no-shared-fs",
      'ls /sys/bus/virtio/devices | wc -l',
      "docker info --format '{{.Name}}'",
      'echo scsi-disks=$(ls /dev/sd* 2>/dev/null | wc -l)',
    ].join('; '));
    assert.match(r.out, /no-host-paths/);
    assert.match(r.out, /no-shared-fs/);
    // virtio-mmio devices: root, scratch, net, balloon (free page reporting), serial, and the
    // SCSI controller volumes are hot-plugged into (docs/volumes.md) — nothing else; no disk on it.
    assert.match(r.out, /^6$/m);
    assert.match(r.out, /scsi-disks=0/);
    assert.match(r.out, new RegExp(`^${a}$`, 'm'), `docker in the guest is the guest's own: ${r.out}`);
  });

  t('filling the scratch disk fails inside the guest; the host disk grows by at most its size', async () => {
    // What A can make the host store: its run dir (the jail's only writable place) and its logs.
    const mine = () => allocatedBytes(join(fx.stateDir, 'sandboxes', a)) + allocatedBytes(join(fx.stateDir, 'logs', a));
    const mine0 = mine();
    const free0 = statfsSync(fx.stateDir);
    const r = await neighbourKeepsWorking('scratch fill', () => sh(a, 'dd if=/dev/zero of=/var/tmp/fill bs=1M 2>&1; echo "dd-exit=$?"; sync', 600_000));
    assert.match(r.out, /No space left on device/);
    const free1 = statfsSync(fx.stateDir);
    const grewBytes = mine() - mine0;
    const fsGrewMiB = ((free0.bavail - free1.bavail) * free0.bsize) / MiB;
    process.stderr.write(`scratch fill: ${r.out.trim().split('\n').slice(-3).join(' | ')}; A's files on the host grew by ${(grewBytes / MiB).toFixed(0)} MiB (cap 10240 MiB; the whole filesystem, shared with other work, by ${fsGrewMiB.toFixed(0)} MiB)\n`);
    // the qcow2 overlay over the template's disk grows by at most the disk's virtual size
    assert.ok(grewBytes <= 10240 * MiB + 128 * MiB, `host disk grew by ${grewBytes} bytes`);
    await sh(a, 'rm -f /var/tmp/fill; fstrim -a 2>/dev/null; true');
  });

  t('a memory hog beyond guest RAM is killed inside the guest; QEMU stays within its cgroup', async () => {
    const pid = await pidOf(a);
    const dirs = cgroupDirs(pid);
    const oomKills = (): number => Number(/oom_kill (\d+)/.exec(dirs.v2 ? cg(dirs.v2, 'memory.events') : cg(dirs.memory, 'memory.oom_control'))?.[1] ?? 0);
    const kills0 = oomKills();
    if (!dirs.v2) writeFileSync(join(dirs.memory ?? '', 'memory.max_usage_in_bytes'), '0'); // reset the peak (v1)
    const r = await neighbourKeepsWorking('memory hog', () => sh(a, 'head -c 1600M /dev/zero | tail > /dev/null; echo "hog-exit=$?"', 300_000));
    assert.doesNotMatch(r.out, /hog-exit=0/, `the hog was not stopped: ${r.out}`);
    const peak = Number(dirs.v2 ? cg(dirs.v2, 'memory.peak') : cg(dirs.memory, 'memory.max_usage_in_bytes'));
    const rssKiB = Number(/(\d+)/.exec(status(pid).VmRSS ?? '')?.[1]);
    process.stderr.write(`memory hog: ${r.out.trim().replace(/\n/g, ' ')}; QEMU RSS ${(rssKiB / 1024).toFixed(0)} MiB, cgroup peak ${(peak / MiB).toFixed(0)} MiB incl. page cache (limit ${QEMU_LIMIT_MIB} MiB), host OOM kills ${oomKills() - kills0}\n`);
    assert.ok(peak <= QEMU_LIMIT_MIB * MiB, `cgroup peak ${peak}`);
    // the guest's own OOM killer ended the hog: the host never had to kill QEMU
    assert.equal(oomKills() - kills0, 0, 'host OOM kills in the VM cgroup');
    assert.equal((await sh(a, 'echo alive')).out.trim(), 'alive');
  });

  t('a console flood leaves the stored log within its cap, and what the cap dropped is counted', async () => {
    const dropped = async (): Promise<number> => {
      const res = await fx.client.raw({ method: 'GET', path: '/metrics' });
      let text = '';
      for await (const c of res) text += String(c);
      const m = new RegExp(`^kiln_sandbox_log_dropped_bytes\\{sandbox="${a}"\\} (\\S+)$`, 'm').exec(text);
      return Number(m?.[1] ?? 0);
    };
    const dropped0 = await dropped();
    await neighbourKeepsWorking('console flood', () => sh(a, 'timeout 20 sh -c "yes kiln-console-flood-0123456789abcdef > /dev/console"; true', 120_000));
    const dir = join(fx.stateDir, 'logs', a);
    const bytes = readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
    const droppedBytes = (await dropped()) - dropped0;
    process.stderr.write(`console flood: ${bytes} bytes stored for A (cap ${LOG_CAP} per segment), ${droppedBytes} dropped and counted\n`);
    assert.ok(bytes <= 2 * LOG_CAP + 64 * 1024, `stored ${bytes} bytes`);
    // 20 s of `yes` is far more than the cap: the cap dropped bytes, and /metrics says how many.
    assert.ok(droppedBytes > 0, `kiln_sandbox_log_dropped_bytes for ${a} rose by ${droppedBytes}`);
  });

  t('a fork bomb hoses only its own guest', async () => {
    // GNU timeout kills the whole process group (every bomb copy) after 30 s.
    const pid = await pidOf(a);
    const dirs = cgroupDirs(pid);
    await neighbourKeepsWorking('fork bomb', () => sh(a, "timeout -s KILL 30 sh -c 'b(){ b | b & }; b; sleep 60'; echo bomb-done", 120_000).catch(() => undefined));
    // A may stay up, or kilnd's heartbeat fails it (GUEST_UNRESPONSIVE) while its guest is
    // saturated: either way only A is affected.
    const rec = (await fx.client.call('GET', `/v1/sandboxes/${a}`)) as { state: string; error: { code: string } | null };
    const pids = existsSync(`/proc/${pid}`) ? Number(dirs.v2 ? cg(dirs.v2, 'pids.current') : cg(dirs.pids, 'pids.current')) : 0;
    process.stderr.write(`fork bomb: A is ${rec.state}${rec.error ? ` (${rec.error.code})` : ''}; host pids in A's cgroup ${pids}\n`);
    assert.ok(rec.state === 'running' || rec.error?.code === 'GUEST_UNRESPONSIVE', `A: ${JSON.stringify(rec)}`);
    assert.ok(pids <= 256);
    assert.equal((await sh(b, 'echo ok')).out.trim(), 'ok');
    // The spinning guest got the low CPU weight while it spun (lifecycle/cpu-balancer.ts); the
    // neighbour, which only ran short commands, never did.
    const evA = (await fx.client.events(a)).map((e) => e.type);
    const evB = (await fx.client.events(b)).map((e) => e.type);
    assert.ok(evA.includes('cpu-demoted'), `A's events: ${evA.join(',')}`);
    assert.ok(!evB.includes('cpu-demoted'), `B's events: ${evB.join(',')}`);
  });

  t('kilnd doctor reports TCG with the reason, and a fix for each gap', async () => {
    const r = await fx.cli(['doctor', '--json', '--state-dir', fx.stateDir], { kilnd: true });
    const out = JSON.parse(r.stdout.toString()) as { checks: Array<{ name: string; status: string; detail: string; fix?: string }> };
    const accel = out.checks.find((c) => c.name === 'accelerator');
    assert.ok(accel);
    if (!/\b(vmx|svm)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'))) assert.match(accel.detail, /TCG.*no vmx\/svm/);
    for (const name of ['qemu', 'seccomp', 'cgroups', 'namespaces', 'vmm-user', 'nftables', 'disk', 'image', 'templates']) {
      assert.ok(out.checks.some((c) => c.name === name), `doctor checks ${name}`);
    }
    for (const c of out.checks) if (c.status !== 'ok') assert.ok(c.fix, `${c.name} has a fix`);
    assert.equal(out.checks.find((c) => c.name === 'seccomp')?.status, 'ok');
  });

  t('destroying removes the VM cgroups', async () => {
    const dirs = cgroupDirs(await pidOf(b));
    await fx.client.destroy(b);
    await fx.client.destroy(a).catch(() => undefined);
    for (const d of Object.values(dirs)) assert.equal(existsSync(d), false, `${d} left behind`);
    for (const d of Object.values(dirs)) assert.equal(existsSync(d.replace(b, a)), false, `${d.replace(b, a)} left behind`);
  });
});
