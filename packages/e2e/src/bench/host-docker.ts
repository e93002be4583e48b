/**
 * The baseline kiln competes with: `docker run --rm` of a tiny local image on the HOST's
 * Docker engine (Debian docker.io). Installs docker.io and starts dockerd if needed, and says so.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, copyFileSync, symlinkSync, mkdirSync, openSync, closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const DOCKER = '/usr/bin/docker';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface HostDocker {
  note: string;
  runOnce(): number;
  stop(): Promise<void>;
}

function dockerOk(): boolean {
  try {
    execFileSync(DOCKER, ['info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

export async function hostDocker(log: (s: string) => void): Promise<HostDocker> {
  const notes: string[] = [];
  if (!existsSync('/usr/sbin/dockerd') || !existsSync(DOCKER)) {
    log('host Docker engine not installed: apt-get install docker.io (for the baseline only)');
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'docker.io'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    notes.push('installed docker.io');
  }
  let daemon: ChildProcess | null = null;
  if (!dockerOk()) {
    log('host dockerd not running: starting it for the baseline (stopped afterwards)');
    const logFd = openSync('/tmp/kiln-bench-dockerd.log', 'a');
    // No bridge and no iptables: the baseline runs with --network none, and the host's
    // firewall (FORWARD policy) must stay as it was for kiln's own sandbox networking.
    daemon = spawn('/usr/sbin/dockerd', ['--host', 'unix:///var/run/docker.sock', '--iptables=false', '--ip6tables=false', '--bridge=none'], {
      stdio: ['ignore', logFd, logFd],
      detached: true,
    });
    closeSync(logFd);
    for (let i = 0; i < 150 && !dockerOk(); i++) await sleep(200);
    if (!dockerOk()) throw new Error('host dockerd did not come up (see /tmp/kiln-bench-dockerd.log)');
    notes.push('started dockerd for the bench');
  }
  // A tiny local image: a static busybox, imported (no registry).
  const root = mkdtempSync(join(tmpdir(), 'kiln-bench-tiny-'));
  mkdirSync(join(root, 'bin'));
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  symlinkSync('busybox', join(root, 'bin/true'));
  symlinkSync('busybox', join(root, 'bin/sh'));
  try {
    execFileSync('sh', ['-c', `tar -C ${root} -c . | ${DOCKER} import - kiln-bench-tiny:latest`], { stdio: 'ignore' });
  } finally {
    rmSync(root, { recursive: true, force: true }); // imported: the tree is no longer needed
  }
  const runOnce = (): number => {
    const t0 = performance.now();
    execFileSync(DOCKER, ['run', '--rm', '--network', 'none', 'kiln-bench-tiny:latest', '/bin/true'], { stdio: 'ignore' });
    return performance.now() - t0;
  };
  runOnce(); // warm-up (first run loads the image into the snapshotter)
  return {
    note: notes.join('; ') || 'host dockerd was already running',
    runOnce,
    stop: async () => {
      if (daemon?.pid) {
        process.kill(daemon.pid, 'SIGTERM');
        await new Promise((r) => daemon?.once('exit', r));
      }
    },
  };
}
