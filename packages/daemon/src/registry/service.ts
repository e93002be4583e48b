/**
 * The private registry (docs/registry.md): Debian's docker-registry, started and supervised by
 * kilnd (restarted with back-off if it exits), storage under `<stateDir>/registry/data`,
 * listening on loopback only. Sandboxes reach it as `registry.kiln.internal` (their resolver
 * answers the gateway address) through a per-sandbox forwarder and kilnd's authenticating
 * proxy (proxy.ts); a policy of `none` drops the port like everything else.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer, type Server as NetServer } from 'node:net';
import type { Server } from 'node:https';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { GuestAgent } from '../sandbox/guest-agent.js';
import { renderRegistryConfig } from './config.js';
import { listenForSandbox } from './proxy.js';
import { ensureRegistryTls, REGISTRY_HOST, type RegistryTls } from './tls.js';

export interface RegistryOptions {
  stateDir: string;
  logger: Logger;
  /** The registry binary (Debian's docker-registry). */
  binary?: string;
  /** Pull-through cache of a public registry (KILN_REGISTRY_REMOTE_URL); null = none. */
  remoteUrl?: string | null;
  remoteUsername?: string | null;
  remotePassword?: string | null;
  /** The owner of a sandbox (null: the admin's). */
  tenantOf: (sandboxId: string) => string | null;
}

/** Whether Debian's docker-registry is installed (kilnd runs without a registry otherwise). */
export function registryInstalled(binary = 'docker-registry'): boolean {
  return ['/usr/bin', '/usr/local/bin', '/usr/sbin'].some((d) => existsSync(join(d, binary)));
}

/** The port the forwarder in each sandbox's netns listens on (the gateway address). */
export const REGISTRY_GUEST_PORT = 443;

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s: NetServer = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });

const cmdlineOf = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
};

export class RegistryService {
  readonly dir: string;
  port = 0;
  private tls: RegistryTls | null = null;
  private child: ChildProcess | null = null;
  private stopping = false;
  private backoffMs = 500;
  private readonly attached = new Map<string, { server: Server; socket: string; pidFile: string }>();

  constructor(private readonly o: RegistryOptions) {
    this.dir = join(o.stateDir, 'registry');
  }

  /** The upstream of the pull-through cache, or null (the registry holds pushed images only). */
  get remoteUrl(): string | null {
    return this.o.remoteUrl ?? null;
  }

  get caCert(): string | null {
    return this.tls?.caCert ?? null;
  }

  /** Writes the config, starts the registry and waits until it answers. */
  async start(): Promise<void> {
    mkdirSync(join(this.dir, 'data'), { recursive: true, mode: 0o700 });
    this.tls = await ensureRegistryTls(join(this.dir, 'tls'));
    this.port = await freePort();
    writeFileSync(join(this.dir, 'config.yml'), renderRegistryConfig({
        dataDir: join(this.dir, 'data'),
        port: this.port,
        remoteUrl: this.o.remoteUrl ?? null,
        remoteUsername: this.o.remoteUsername ?? null,
        remotePassword: this.o.remotePassword ?? null,
      }), { mode: 0o600 });
    this.spawnRegistry();
    for (let i = 0; i < 200; i++) {
      if (await this.ping()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    this.o.logger.warn({ port: this.port }, 'the registry did not answer within 10 s (still supervised)');
  }

  ping(): Promise<boolean> {
    return new Promise((resolve) => {
      const req = get({ host: '127.0.0.1', port: this.port, path: '/v2/', timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.on('timeout', () => req.destroy());
    });
  }

  private spawnRegistry(): void {
    const log = openSync(join(this.dir, 'registry.log'), 'a', 0o600);
    const child = spawn(this.o.binary ?? 'docker-registry', ['serve', join(this.dir, 'config.yml')], { stdio: ['ignore', log, log] });
    closeSync(log);
    this.child = child;
    child.once('error', (err) => this.o.logger.error({ err }, 'cannot start the registry (install docker-registry: scripts/setup.sh)'));
    child.once('exit', (code, signal) => {
      this.child = null;
      if (this.stopping) return;
      this.o.logger.warn({ code, signal, restartInMs: this.backoffMs }, 'the registry exited; restarting');
      setTimeout(() => {
        if (!this.stopping) this.spawnRegistry();
      }, this.backoffMs).unref();
      this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
    });
    setTimeout(() => (this.backoffMs = 500), 60_000).unref();
  }

  /** The registry's process id (tests and doctor), or null. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /**
   * Makes the registry reachable from one sandbox: kilnd's proxy on a unix socket in its run dir,
   * a forwarder in its netns on gateway:443 to it.
   */
  async attach(sandboxId: string, net: { netns: string; gateway: string }, runDir: string): Promise<void> {
    if (!this.tls) return;
    await this.detach(sandboxId);
    const socket = join(runDir, 'registry.sock');
    const pidFile = join(runDir, 'registry-fwd.pid');
    const server = await listenForSandbox(socket, this.tls, { port: this.port }, () => this.o.tenantOf(sandboxId));
    const fwd = spawn('ip', ['netns', 'exec', net.netns, 'socat', `TCP-LISTEN:${REGISTRY_GUEST_PORT},bind=${net.gateway},reuseaddr,fork`, `UNIX-CONNECT:${socket}`], {
      stdio: 'ignore',
      detached: true,
    });
    fwd.unref();
    if (fwd.pid) writeFileSync(pidFile, `${fwd.pid}\n`);
    this.attached.set(sandboxId, { server, socket, pidFile });
  }

  /** The guest's dockerd trusts the registry's CA (read per connection: no restart). */
  async trustInGuest(agent: GuestAgent): Promise<void> {
    if (!this.tls) return;
    await agent.writeFile(`/etc/docker/certs.d/${REGISTRY_HOST}/ca.crt`, Readable.from([Buffer.from(this.tls.caCert)]), { mode: 0o644, mkdirs: true });
  }

  /** Stops a sandbox's forwarder and closes its proxy listener (also from a run dir alone, after a crash). */
  async detach(sandboxId: string, runDir?: string): Promise<void> {
    const a = this.attached.get(sandboxId);
    this.attached.delete(sandboxId);
    const pidFile = a?.pidFile ?? (runDir ? join(runDir, 'registry-fwd.pid') : null);
    const socket = a?.socket ?? (runDir ? join(runDir, 'registry.sock') : null);
    if (pidFile && socket) {
      const pid = Number((() => {
        try {
          return readFileSync(pidFile, 'utf8').trim();
        } catch {
          return '';
        }
      })());
      if (Number.isInteger(pid) && pid > 0 && cmdlineOf(pid).includes(socket)) {
        // Its process group: the forwarder and the children it forked per connection.
        const kill = (sig: NodeJS.Signals) => {
          try {
            process.kill(-pid, sig);
          } catch {
            // gone
          }
        };
        kill('SIGTERM');
        for (let i = 0; i < 50 && cmdlineOf(pid).includes(socket); i++) await new Promise((r) => setTimeout(r, 20));
        kill('SIGKILL');
      }
      rmSync(pidFile, { force: true });
    }
    if (a) await new Promise<void>((r) => a.server.close(() => r()));
    if (socket) rmSync(socket, { force: true });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const a of this.attached.values()) a.server.close();
    const c = this.child;
    if (c && c.exitCode === null) {
      const gone = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await gone;
    }
  }
}
