/**
 * Fixture for tests that drive kiln with the real `e2b` SDK: a test kilnd (DaemonFixture) with a
 * TCP listener, and E2B-shaped keys minted with `kiln key create --tenant NAME --e2b`. The SDK
 * gets nothing but the three variables an E2B user sets — `E2B_API_URL`, `E2B_SANDBOX_URL` (both
 * the listener's origin: kiln serves the control and data planes on it) and `E2B_API_KEY` —
 * through `useEnv()` (process.env, as a user would) or `env()` (to pass as SDK options).
 */
import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';
import { DaemonFixture } from './harness.js';

export interface E2bEnv {
  E2B_API_URL: string;
  E2B_SANDBOX_URL: string;
  E2B_API_KEY: string;
}

export class E2bFixture {
  readonly daemon: DaemonFixture;
  port = 0;
  /** The first tenant's key (tenant `e2b`), made by start(). */
  key = '';

  constructor(name: string) {
    this.daemon = new DaemonFixture(name);
  }

  get origin(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts kilnd with a TCP listener on a free loopback port and mints the first key. */
  async start(env: Record<string, string> = {}): Promise<void> {
    await this.daemon.start({ KILN_LISTEN: '127.0.0.1:0', ...env });
    const line = readFileSync(this.daemon.logPath, 'utf8').split('\n').find((l) => l.includes('"kilnd listening"'));
    this.port = (JSON.parse(line ?? '{}') as { tcp?: { port?: number } }).tcp?.port ?? 0;
    assert.ok(this.port > 0, 'kilnd logged its TCP port');
    this.key = await this.mintKey('e2b');
  }

  /** A new E2B-shaped key for a tenant (`kiln key create --tenant NAME --e2b`). */
  async mintKey(tenant: string): Promise<string> {
    const r = await this.daemon.cli(['key', 'create', '--tenant', tenant, '--e2b']);
    assert.equal(r.code, 0, r.stderr);
    const key = r.stdout.toString().trim();
    assert.match(key, /^e2b_[0-9a-f]{40}$/);
    return key;
  }

  /** The three variables, for a key (default: the first tenant's). */
  env(key = this.key): E2bEnv {
    return { E2B_API_URL: this.origin, E2B_SANDBOX_URL: this.origin, E2B_API_KEY: key };
  }

  /** Sets the three variables in process.env (and clears E2B_DEBUG/E2B_DOMAIN), as an E2B user would. */
  useEnv(key = this.key): void {
    delete process.env.E2B_DEBUG;
    delete process.env.E2B_DOMAIN;
    Object.assign(process.env, this.env(key));
  }

  /** Notes an E2B sandbox id so that close() checks it for leaks. */
  track(e2bId: string): void {
    this.daemon.sandboxIds.add(`sb-${e2bId}`);
  }

  test(name: string, fn: () => Promise<void>): Promise<void> {
    return this.daemon.test(name, fn);
  }

  async close(): Promise<void> {
    for (const k of ['E2B_API_URL', 'E2B_SANDBOX_URL', 'E2B_API_KEY']) delete process.env[k];
    await this.daemon.close();
  }
}
