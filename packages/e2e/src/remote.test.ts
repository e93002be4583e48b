/**
 * kiln as a service: a kilnd with a TCP listener (TLS, self-signed), an API key made over the
 * admin socket, and then the CLI (`--host`, KILN_API_KEY) and the SDK (node:https with `ca`, and
 * fetch — the README quickstart with KILN_HOST) drive it exactly like the local socket.
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Kiln, UnauthenticatedError } from '@kiln/sdk';
import { CLI, DaemonFixture, integrationSkipReason, REPO } from './harness.js';
import { tlsListener, type TlsListener } from './tls-listener.js';

const skip = integrationSkipReason();

describe('a remote kilnd over TCP with TLS and an API key', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('remote');
  let tls: TlsListener;
  let key = '';

  before(async () => {
    tls = await tlsListener(fx.stateDir);
    await fx.start(tls.env);
    key = (await fx.client.call<{ key: string }>('POST', '/v1/keys', { tenant: 'remote-test' })).key;
  });
  after(() => fx.close());

  const run = (argv: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve, reject) => {
      const p = spawn(process.execPath, argv, { env: { ...process.env, KILN_SOCKET: '/nonexistent/kiln.sock', NODE_EXTRA_CA_CERTS: tls.certPath, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      p.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      p.on('error', reject);
      p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  const kiln = (args: string[], env: Record<string, string> = { KILN_API_KEY: key }) => run([CLI, '--host', tls.url, ...args], env);

  fx.test('the CLI with --host and KILN_API_KEY: create, exec, ls, rm; no key is 401 UNAUTHENTICATED', async () => {
    const created = await kiln(['create']);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stderr, '', 'piped: no progress, no chatter');
    const id = created.stdout.trim().split('\n').at(-1) ?? '';
    assert.match(id, /^sb-[0-9a-f]+$/);
    const ex = await kiln(['exec', id, '--', 'sh', '-c', 'echo remote $((6*7)); exit 3']);
    assert.equal(ex.stdout, 'remote 42\n');
    assert.equal(ex.code, 3);
    assert.match((await kiln(['ls'])).stdout, new RegExp(`^${id}\\s+running`, 'm'));
    const anon = await kiln(['ls'], {});
    assert.equal(anon.code, 1);
    assert.match(anon.stderr, /UNAUTHENTICATED/);
    // KILN_HOST does the same as --host.
    const viaEnv = await run([CLI, 'ls'], { KILN_HOST: tls.url, KILN_API_KEY: key });
    assert.match(viaEnv.stdout, new RegExp(`^${id}`, 'm'));
    assert.equal((await kiln(['rm', id])).code, 0);
  });

  fx.test('the SDK over https with a private CA; a wrong key is UnauthenticatedError', async () => {
    {
      await using sb = await Kiln.connect({ url: tls.url, apiKey: key, ca: tls.ca }).sandboxes.create();
      const r = await sb.exec(['uname', '-s']);
      assert.equal(r.stdout, 'Linux\n');
      await sb.files.write('/tmp/x', 'over tls');
      assert.equal(await sb.files.read('/tmp/x'), 'over tls');
    }
    await assert.rejects(Kiln.connect({ url: tls.url, apiKey: 'kiln_wrong_key', ca: tls.ca }).sandboxes.list(), (e: unknown) => e instanceof UnauthenticatedError && e.status === 401);
  });

  fx.test('the README quickstart over KILN_HOST (fetch transport) works as over the socket', async () => {
    const r = await run([join(REPO, 'packages/sdk/dist/examples/quickstart.js')], { KILN_HOST: tls.url, KILN_API_KEY: key });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /line 1\nline 2\nline 3\n/);
    assert.match(r.stdout, /^HELLO FROM STDIN$/m);
    assert.match(r.stdout, /^aborted: AbortError$/m);
  });
});
