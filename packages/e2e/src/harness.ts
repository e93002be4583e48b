/**
 * Integration fixture: a real kilnd (`kilnd run` as a child process) in a fresh
 * state directory that borrows the built guest image, and a client for it. It owns cleanup:
 * close() destroys what the test left, stops the daemon and fails the suite if anything of its
 * sandboxes is left on the host (leak-check.ts); on failure it prints the daemon log and each
 * sandbox's console tail.
 */
import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readlinkSync, readdirSync, readFileSync, rmSync, symlinkSync, openSync, closeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { KilnClient } from '@kiln/cli';
import { removeLeftovers, SandboxIdLedger, settledLeftovers } from './leak-check.js';

export const REPO = resolve(import.meta.dirname, '../../..');
export const CLI = join(REPO, 'packages/cli/dist/main.js');
/** The daemon's binary (`kilnd run`, `kilnd image build`). */
export const KILND = join(REPO, 'packages/daemon/dist/kilnd.js');
/** Where `kilnd image build` put the guest image (default /var/lib/kiln). */
export const IMAGE_STATE_DIR = process.env.KILN_TEST_IMAGE_STATE_DIR ?? process.env.KILN_STATE_DIR ?? '/var/lib/kiln';

/** Why integration tests cannot run here, or null. Used as the skip message. */
export function integrationSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'integration tests need root (QEMU, TAP, nftables, debootstrap)';
  try {
    execFileSync('qemu-system-x86_64', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'qemu-system-x86_64 is not installed (scripts/setup.sh installs it)';
  }
  if (!existsSync(join(IMAGE_STATE_DIR, 'images'))) return `no guest image under ${IMAGE_STATE_DIR}; run \`kilnd image build\` first`;
  return null;
}

const SUBNET_LOCK_DIR = process.env.KILN_NET_LOCK_DIR ?? '/run/kiln';
const pickedSubnets = new Set<string>();

/** Whether a live kilnd holds the lock of this subnet (subnet-lock.ts: flock on net-<base>_<prefix>.lock). */
function subnetHeld(subnet: string): boolean {
  const path = join(SUBNET_LOCK_DIR, `net-${subnet.replace('/', '_')}.lock`);
  if (!existsSync(path)) return false;
  try {
    execFileSync('flock', ['--nonblock', '--shared', path, 'true'], { stdio: 'ignore' });
    return false;
  } catch {
    return true;
  }
}

/**
 * A sandbox subnet for one fixture. kilnd takes a host-wide lock per subnet, so concurrent
 * daemons (fixtures of one file, parallel runs) need subnets of their own: KILN_NET_SUBNET when
 * the environment sets one, else a /16 in 10.200–10.250 that no live kilnd holds and no other
 * fixture of this process picked (10.210, kilnd's default, is left to a real kilnd).
 */
export function pickSubnet(): string {
  if (process.env.KILN_NET_SUBNET) return process.env.KILN_NET_SUBNET;
  const start = Math.floor(Math.random() * 51);
  for (let i = 0; i < 51; i++) {
    const b = 200 + ((start + i) % 51);
    const subnet = `10.${b}.0.0/16`;
    if (b === 210 || pickedSubnets.has(subnet) || subnetHeld(subnet)) continue;
    pickedSubnets.add(subnet);
    return subnet;
  }
  throw new Error('no free sandbox subnet in 10.200.0.0-10.250.255.255 (every /16 is held by a kilnd)');
}

export class DaemonFixture {
  /** This fixture's sandbox subnet (KILN_NET_SUBNET of its kilnd unless a start() env overrides it). */
  subnet: string;
  readonly stateDir: string;
  readonly socket: string;
  readonly logPath: string;
  readonly client: KilnClient;
  private proc: ChildProcess | null = null;
  private anyTestFailed = false;
  private readonly ledger: SandboxIdLedger;

  constructor(readonly name: string) {
    this.stateDir = mkdtempSync(`/tmp/kiln-it-${name}-`);
    this.socket = join(this.stateDir, 'kiln.sock');
    this.logPath = join(this.stateDir, 'kilnd.log');
    symlinkSync(join(IMAGE_STATE_DIR, 'images'), join(this.stateDir, 'images'));
    // Share the templates `kilnd image build` made, so creates restore instead of booting.
    mkdirSync(join(IMAGE_STATE_DIR, 'templates'), { recursive: true });
    symlinkSync(join(IMAGE_STATE_DIR, 'templates'), join(this.stateDir, 'templates'));
    this.client = new KilnClient(this.socket);
    this.subnet = pickSubnet();
    this.ledger = new SandboxIdLedger(this.stateDir, this.client);
  }

  /** Every sandbox id this fixture's kilnd was seen to hand out: close() checks each for leaks. */
  get sandboxIds(): Set<string> {
    return this.ledger.ids;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  async start(env: Record<string, string> = {}): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.startOnce(env);
      } catch (err) {
        // Another kilnd took an automatically picked subnet between the pick and the start.
        const raced = /NETWORK_SUBNET_IN_USE/.test((err as Error).message) && !env.KILN_NET_SUBNET && !process.env.KILN_NET_SUBNET;
        if (!raced || attempt >= 4) throw err;
        this.subnet = pickSubnet();
      }
    }
  }

  private async startOnce(env: Record<string, string>): Promise<void> {
    const log = openSync(this.logPath, 'a');
    this.proc = spawn(process.execPath, [KILND, 'run', '--socket', this.socket, '--state-dir', this.stateDir, '--log-level', 'debug'], {
      stdio: ['ignore', log, log],
      // No background template builds in tests (they would compete for the 2 cores).
      // Tests never route off this machine: no uplink unless a test brings its own (netlab.ts).
      env: { ...process.env, KILN_LAZY_TEMPLATES: '0', KILN_NET_UPLINK: 'none', KILN_NET_SUBNET: this.subnet, ...env },
    });
    closeSync(log);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`kilnd exited during start: ${this.logTail()}`);
      try {
        await this.client.call('GET', '/v1/health');
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    throw new Error(`kilnd did not answer within 30 s: ${this.logTail()}`);
  }

  /** SIGKILLs the daemon (VMs stay up) and waits for it to be gone. */
  async crash(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
    this.proc = null;
  }

  async stop(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await gone;
    this.proc = null;
  }

  /** Runs the kiln CLI against this daemon (with `kilnd: true`, the daemon's own binary instead). */
  cli(args: string[], opts: { input?: Buffer | string; timeoutMs?: number; kilnd?: boolean } = {}): Promise<{ code: number; stdout: Buffer; stderr: string }> {
    return new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [opts.kilnd ? KILND : CLI, '--socket', this.socket, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      p.stdout.on('data', (b: Buffer) => out.push(b));
      p.stderr.on('data', (b: Buffer) => err.push(b));
      const timer = setTimeout(() => {
        p.kill('SIGKILL');
        reject(new Error(`kiln ${args.join(' ')} timed out`));
      }, opts.timeoutMs ?? 300_000);
      p.on('error', reject);
      p.on('close', (code) => {
        clearTimeout(timer);
        this.ledger.noteOutput(Buffer.concat(out).toString('utf8'));
        resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
      });
      if (opts.input !== undefined) p.stdin.end(opts.input);
      else p.stdin.end();
    });
  }

  logTail(bytes = 4000): string {
    try {
      return readFileSync(this.logPath, 'utf8').slice(-bytes);
    } catch {
      return '(no daemon log)';
    }
  }

  consoleTail(id: string, bytes = 3000): string {
    try {
      // kilnd keeps guest logs (console, dockerd, agent) in <stateDir>/logs/<id>/, capped
      return readFileSync(join(this.stateDir, 'logs', id, 'current.log'), 'utf8').slice(-bytes);
    } catch {
      return '(no console log)';
    }
  }

  /** Prints what helps debug a failed test: daemon log and each sandbox's console. */
  dumpDiagnostics(): void {
    process.stderr.write(`\n--- kilnd log (${this.name}, ${this.stateDir}) ---\n${this.logTail()}\n`);
    // A 500 names only its request id; the detail is kilnd's error line for it, maybe far back.
    const errors = this.logTail(Infinity).split('\n').filter((l) => /"level":(50|60)/.test(l));
    if (errors.length) process.stderr.write(`--- kilnd errors (${this.name}, last ${Math.min(errors.length, 20)}) ---\n${errors.slice(-20).map((l) => l.slice(0, 2000)).join('\n')}\n`);
    const dir = join(this.stateDir, 'logs');
    if (existsSync(dir)) for (const id of readdirSync(dir)) process.stderr.write(`--- guest logs of ${id} ---\n${this.consoleTail(id)}\n`);
  }

  /** QEMU processes whose command line mentions this fixture's state directory. */
  vmmProcesses(): number[] {
    const pids: number[] = [];
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
        if (!cmd.includes(this.stateDir)) continue;
        // The QEMU process itself, not a launcher (jail stages) whose argv mentions it.
        if (readlinkSync(`/proc/${name}/exe`).includes('qemu-system')) pids.push(Number(name));
      } catch {
        // raced with exit
      }
    }
    return pids;
  }

  /**
   * Runs a shell command in a sandbox: its stdout, stderr, both in the order they came, and
   * its exit code. An `error` event (the exec could not run) throws, with its code.
   */
  async sh(id: string, shell: string, timeoutMs?: number): Promise<{ out: string; err: string; all: string; code: number | null }> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const all: Buffer[] = [];
    let code: number | null = null;
    for await (const ev of this.client.exec(id, { shell, ...(timeoutMs !== undefined ? { timeoutMs } : {}) })) {
      if (ev.type === 'stdout' || ev.type === 'stderr') {
        const b = Buffer.from(ev.data, 'base64');
        (ev.type === 'stdout' ? out : err).push(b);
        all.push(b);
      } else if (ev.type === 'exit') code = ev.exitCode;
      else if (ev.type === 'error') throw Object.assign(new Error(`${ev.error.code}: ${ev.error.message}`), { code: ev.error.code });
    }
    const text = (bs: Buffer[]) => Buffer.concat(bs).toString();
    return { out: text(out), err: text(err), all: text(all), code };
  }

  /** A test whose failure makes close() print the daemon log and every sandbox's console. */
  test(name: string, fn: () => Promise<void>): Promise<void> {
    return test(name, async () => {
      try {
        await fn();
      } catch (e) {
        this.anyTestFailed = true;
        throw e;
      }
    });
  }

  /**
   * Destroys every sandbox, stops the daemon, then asserts that nothing of this fixture's
   * sandboxes is left on the host (VMMs, resolvers, netns, links, nft tables, cgroups, run dirs,
   * sockets): a leak is removed and then thrown, failing the suite that caused it.
   */
  async close(opts: { failed?: boolean; settleMs?: number } = {}): Promise<void> {
    if (opts.failed ?? this.anyTestFailed) this.dumpDiagnostics();
    let leaked = new Map<string, string[]>();
    try {
      await this.ledger.collect(this.proc !== null && this.proc.exitCode === null);
      if (this.proc && this.proc.exitCode === null) {
        for (const sb of await this.client.list().catch(() => [])) await this.client.destroy(sb.id).catch(() => undefined);
      }
    } finally {
      await this.stop();
      await this.ledger.collect(this.proc !== null && this.proc.exitCode === null);
      leaked = await settledLeftovers(this.stateDir, this.sandboxIds, opts.settleMs);
      for (const id of leaked.keys()) removeLeftovers(this.stateDir, id);
      for (const pid of this.vmmProcesses()) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      rmSync(this.stateDir, { recursive: true, force: true });
    }
    if (leaked.size) {
      const lines = [...leaked].map(([id, l]) => `  ${id}: ${l.join(', ')}`).join('\n');
      throw new Error(`${this.name}: sandboxes left host resources behind after destroy and stop (removed now):\n${lines}`);
    }
  }
}
