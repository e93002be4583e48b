/**
 * A test "internet": a network namespace the test creates and removes, used by kilnd as the
 * sandboxes' uplink (`KILN_NET_UPLINK=netns:<name>`). Nothing in it routes anywhere else, so
 * no test packet leaves this machine. It holds:
 *   198.51.100.10  web servers on 80, 443 (plain HTTP) and 8080      (www.kiln.test)
 *   203.0.113.10   a web server on 80, for "outside the allow-list"  (other.kiln.test)
 *   198.51.100.53  DNS (dnsmasq) answering *.kiln.test; nothing else
 * Addresses are documentation ranges (TEST-NET-2/3), public as far as the policy is concerned.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';

export const LAB = {
  web: '198.51.100.10',
  other: '203.0.113.10',
  dns: '198.51.100.53',
  domain: 'www.kiln.test',
  otherDomain: 'other.kiln.test',
} as const;

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

export class NetLab {
  readonly name = `klab-${randomBytes(4).toString('hex')}`;
  private web: ChildProcess | null = null;
  private readonly dir = mkdtempSync('/tmp/kiln-netlab-');

  /** The uplink setting for kilnd. */
  get uplink(): string {
    return `netns:${this.name}`;
  }

  async start(): Promise<void> {
    ip('netns', 'add', this.name);
    ip('-n', this.name, 'link', 'set', 'lo', 'up');
    for (const a of [LAB.web, LAB.other, LAB.dns]) ip('-n', this.name, 'addr', 'add', `${a}/32`, 'dev', 'lo');
    execFileSync('ip', [
      'netns', 'exec', this.name, 'dnsmasq',
      `--listen-address=${LAB.dns}`, '--bind-interfaces', '--no-resolv', '--no-hosts', '--no-poll',
      `--address=/${LAB.domain}/${LAB.web}`, `--address=/${LAB.otherDomain}/${LAB.other}`,
      `--pid-file=${join(this.dir, 'dnsmasq.pid')}`, '--user=nobody', '--group=nogroup',
    ]);
    const listeners = [
      { host: LAB.web, port: 80 },
      { host: LAB.web, port: 443 },
      { host: LAB.web, port: 8080 },
      { host: LAB.other, port: 80 },
    ];
    const server = join(import.meta.dirname, 'netlab-server.js');
    this.web = spawn('ip', ['netns', 'exec', this.name, process.execPath, server, JSON.stringify(listeners)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('lab web servers did not start')), 10_000);
      this.web?.stdout?.once('data', () => {
        clearTimeout(t);
        resolve();
      });
      this.web?.once('exit', (code) => reject(new Error(`lab web servers exited (${code})`)));
    });
  }

  /** Runs `cmd` inside the lab namespace (for checks). */
  exec(cmd: string[]): string {
    return execFileSync('ip', ['netns', 'exec', this.name, ...cmd], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  }

  /** Everything in the lab that carries `text` in its name: links and nft tables. */
  leftovers(text: string): string[] {
    const out: string[] = [];
    if (ip('-n', this.name, '-o', 'link', 'show').includes(text)) out.push(`link in ${this.name}`);
    if (this.exec(['nft', 'list', 'tables']).includes(text)) out.push(`nft table in ${this.name}`);
    return out;
  }

  async stop(): Promise<void> {
    this.web?.kill('SIGTERM');
    for (const pid of ip('netns', 'pids', this.name).split(/\s+/).filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone
      }
    }
    ip('netns', 'del', this.name);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** What the host shows of a sandbox's network, by the id hex in the names. */
export function hostLeftovers(idHex: string): string[] {
  const out: string[] = [];
  if (ip('netns', 'list').includes(idHex)) out.push('netns');
  if (ip('-o', 'link', 'show').includes(idHex)) out.push('link');
  if (execFileSync('nft', ['list', 'tables']).toString().includes(idHex)) out.push('nft table');
  return out;
}
