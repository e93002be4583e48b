/**
 * The walking skeleton end to end on a real microVM (TCG here): exec semantics, streaming,
 * big output, binary files both ways, Docker inside the guest, the CLI, and a clean rm.
 * One sandbox is shared by the tests of this file (a TCG boot costs tens of seconds).
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { ExecEvent } from '@kiln/cli';
import { DaemonFixture, integrationSkipReason } from './harness.js';

const skip = integrationSkipReason();
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Collected {
  stdout: Buffer;
  stderr: Buffer;
  exit: Extract<ExecEvent, { type: 'exit' }> | null;
  events: Array<{ type: string; at: number }>;
}

describe('sandbox on a real microVM', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('sandbox');
  let id = '';

  const run = async (body: Record<string, unknown>): Promise<Collected> => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const c: Collected = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), exit: null, events: [] };
    for await (const ev of fx.client.exec(id, body)) {
      c.events.push({ type: ev.type, at: Date.now() });
      if (ev.type === 'stdout') out.push(Buffer.from(ev.data, 'base64'));
      else if (ev.type === 'stderr') err.push(Buffer.from(ev.data, 'base64'));
      else if (ev.type === 'exit') c.exit = ev;
      else if (ev.type === 'error') throw new Error(`${ev.error.code}: ${ev.error.message}`);
    }
    c.stdout = Buffer.concat(out);
    c.stderr = Buffer.concat(err);
    return c;
  };

  before(async () => {
    await fx.start();
    const r = await fx.cli(['create', '--memory', '1024', '--cpus', '2', '--label', 'suite=sandbox'], { timeoutMs: 400_000 });
    assert.equal(r.code, 0, `kiln create failed: ${r.stderr}`);
    id = r.stdout.toString().trim().split('\n').at(-1) ?? '';
    assert.match(id, /^sb-[0-9a-f]{32}$/, '128 random bits');
    process.stderr.write(`sandbox under test: ${id}\n`);
  });

  after(async () => {
    await fx.close();
  });

  const t = (name: string, fn: () => Promise<void>) => fx.test(name, fn);

  t('exit codes come back right', async () => {
    assert.equal((await run({ argv: ['true'] })).exit?.exitCode, 0);
    assert.equal((await run({ argv: ['false'] })).exit?.exitCode, 1);
    assert.equal((await run({ shell: 'exit 42' })).exit?.exitCode, 42);
  });

  t('signals come back right', async () => {
    const self = await run({ shell: 'kill -TERM $$' });
    assert.equal(self.exit?.exitCode, null);
    assert.equal(self.exit?.signal, 'SIGTERM');
    const timed = await run({ argv: ['sleep', '30'], timeoutMs: 500 });
    assert.equal(timed.exit?.timedOut, true);
    assert.equal(timed.exit?.signal, 'SIGKILL');
  });

  t('stdout and stderr stay separate and arrive while the command runs', async () => {
    const c = await run({ shell: 'echo out1; echo err1 >&2; sleep 2; echo out2; echo err2 >&2' });
    assert.equal(c.stdout.toString(), 'out1\nout2\n');
    assert.equal(c.stderr.toString(), 'err1\nerr2\n');
    const firstOut = c.events.find((e) => e.type === 'stdout');
    const exit = c.events.find((e) => e.type === 'exit');
    assert.ok(firstOut && exit && exit.at - firstOut.at >= 1500, 'first output arrived at least 1.5 s before the exit');
  });

  t('env, cwd and stdin', async () => {
    const c = await run({ shell: 'echo "$FOO $(pwd)"', env: { FOO: 'bar' }, cwd: '/tmp' });
    assert.equal(c.stdout.toString(), 'bar /tmp\n');
    const r = await fx.cli(['exec', '-i', id, '--', 'sh', '-c', 'tr a-z A-Z; exit 7'], { input: 'hello stdin\n' });
    assert.equal(r.code, 7, r.stderr);
    assert.equal(r.stdout.toString(), 'HELLO STDIN\n');
  });

  t('10 MB of output arrives intact', async () => {
    const c = await run({ shell: 'head -c 10485760 /dev/urandom > /tmp/big && sha256sum /tmp/big | cut -d" " -f1 >&2 && cat /tmp/big' });
    assert.equal(c.exit?.exitCode, 0);
    assert.equal(c.stdout.length, 10 * 1024 * 1024);
    assert.equal(sha(c.stdout), c.stderr.toString().trim());
  });

  t('a binary file round-trips byte for byte both ways', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const up = await fx.client.upload(id, '/root/blob.bin', Readable.from([data]), { mode: 0o600 });
    assert.equal(up.bytes, data.length);
    assert.equal(up.sha256, sha(data));
    const inGuest = await run({ shell: 'sha256sum /root/blob.bin | cut -d" " -f1; stat -c %a /root/blob.bin' });
    assert.equal(inGuest.stdout.toString(), `${sha(data)}\n600\n`);
    const res = await fx.client.download(id, '/root/blob.bin');
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    assert.equal(sha(Buffer.concat(chunks)), sha(data));
    // And through the CLI, both directions.
    const dir = mkdtempSync(join(tmpdir(), 'kiln-cp-'));
    writeFileSync(join(dir, 'in.bin'), data);
    assert.equal((await fx.cli(['cp', join(dir, 'in.bin'), `${id}:/tmp/cli.bin`])).code, 0);
    assert.equal((await fx.cli(['cp', `${id}:/tmp/cli.bin`, join(dir, 'out.bin')])).code, 0);
    assert.equal(sha(readFileSync(join(dir, 'out.bin'))), sha(data));
    const missing = await fx.cli(['cp', `${id}:/nonexistent`, join(dir, 'x')]);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /NOT_FOUND/);
  });

  t('docker run works inside the guest; its dockerd is not reachable from the host', async () => {
    // Build a tiny image from local files (no registry here): the host's static busybox.
    const busybox = readFileSync('/bin/busybox');
    await assert.rejects(fx.client.upload(id, '/root/tiny/bin/busybox', Readable.from([busybox])), { code: 'GUEST_NOT_FOUND' }, 'no parents: a clear error, not a reset');
    await fx.client.upload(id, '/root/tiny/bin/busybox', Readable.from([busybox]), { mode: 0o755, parents: true });
    const c = await run({
      shell: 'cd /root/tiny && ln -sf busybox bin/sh && tar -c . | docker import - tiny:latest >/dev/null && docker run --rm tiny:latest /bin/busybox echo hello-from-container && docker info --format "{{.SecurityOptions}}"',
      timeoutMs: 240_000,
    });
    assert.equal(c.exit?.exitCode, 0, c.stderr.toString());
    assert.match(c.stdout.toString(), /^hello-from-container\n/);
    assert.match(c.stdout.toString(), /userns/, 'dockerd runs with user-namespace remapping');
    // dockerd listens only on its unix socket inside the guest: no TCP listener at all.
    const tcp = await run({ shell: 'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk \'$4 == "0A"\' | wc -l' });
    assert.equal(tcp.stdout.toString().trim(), '0');
    // And the host has no path to it: the VM has no network device and no host socket.
    assert.equal(existsSync(join(fx.stateDir, 'sandboxes', id, 'docker.sock')), false);
  });

  t("files: mkdir, stat, list and remove act on the guest's file system", async () => {
    const c = fx.client;
    const base = `/sandboxes/${id}/files`;
    const api = <T>(method: string, path: string, body?: unknown) => c.call<T>(method, `/v1${base}${path}`, body);
    await api('POST', '/mkdir', { path: '/root/tree/a/b', recursive: true });
    await run({ shell: 'printf 12345 > /root/tree/a/five.txt && ln -s five.txt /root/tree/a/link' });
    const st = await c.stat(id, '/root/tree/a/five.txt');
    assert.deepEqual([st.type, st.size], ['file', 5]);
    assert.equal((await c.stat(id, '/root/tree/a/b')).type, 'dir');
    const ls = await api<Array<{ name: string; type: string }>>('GET', `/list?path=${encodeURIComponent('/root/tree/a')}`);
    assert.deepEqual(ls.map((e) => `${e.name}:${e.type}`).sort(), ['b:dir', 'five.txt:file', 'link:symlink']);
    await assert.rejects(api('POST', '/mkdir', { path: '/root/tree/x/y' }), { code: 'GUEST_NOT_FOUND' });
    await assert.rejects(api('DELETE', `?path=${encodeURIComponent('/root/tree')}`), { code: 'GUEST_EXISTS' });
    await assert.rejects(c.stat(id, '/root/no-such-file'), { code: 'GUEST_NOT_FOUND' });
    await api('DELETE', `?path=${encodeURIComponent('/root/tree')}&recursive=true`);
    assert.equal((await run({ shell: 'test -e /root/tree; echo $?' })).stdout.toString().trim(), '1', 'gone in the guest');
  });

  t("exec signal reaches the command's process group in the guest", async () => {
    let execId = '';
    let out = '';
    let exit: Extract<ExecEvent, { type: 'exit' }> | null = null;
    for await (const ev of fx.client.exec(id, { shell: 'trap "echo got-term; exit 9" TERM; sleep 300 & wait; echo never' })) {
      if (ev.type === 'started') {
        execId = ev.execId;
        // The trap is set before the shell forks sleep; give it a moment to get there.
        await run({ shell: 'sleep 0.5' });
        await fx.client.signal(id, execId, 'SIGTERM');
      } else if (ev.type === 'stdout') out += Buffer.from(ev.data, 'base64').toString();
      else if (ev.type === 'exit') exit = ev;
    }
    assert.match(out, /got-term/);
    assert.doesNotMatch(out, /never/);
    assert.equal(exit?.exitCode, 9);
    assert.equal((await run({ shell: 'pgrep -f "sleep [3]00" || echo none' })).stdout.toString().trim(), 'none', 'the signal reached the group');
    await assert.rejects(fx.client.signal(id, execId, 'SIGKILL'), { code: 'EXEC_NOT_FOUND' });
  });

  t('/v1/info describes this kilnd: version, accelerator, the guest image it runs', async () => {
    const info = await fx.client.call<{ version: string; driver: { accel?: string }; image: { hash: string; kernelVersion?: string } | null; stateDir: string }>('GET', '/v1/info');
    assert.equal(info.version, (await fx.cli(['--version'])).stdout.toString().trim());
    assert.ok(info.driver.accel === 'tcg' || info.driver.accel === 'kvm', JSON.stringify(info.driver));
    assert.equal(info.stateDir, fx.stateDir);
    assert.match(info.image?.hash ?? '', /^[0-9a-f]{16}$/);
    assert.equal(info.image?.kernelVersion, (await run({ argv: ['uname', '-r'] })).stdout.toString().trim());
  });

  t('the CLI lists and inspects; bad input is a clear error', async () => {
    const ls = await fx.cli(['ls', '--json']);
    const list = JSON.parse(ls.stdout.toString()) as Array<{ id: string; state: string }>;
    assert.deepEqual(list.map((s) => [s.id, s.state]), [[id, 'running']]);
    const bad = await fx.cli(['create', '--memory', '-5']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /memoryMiB/);
    const missing = await fx.cli(['exec', 'sb-000000000000', '--', 'true']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /SANDBOX_NOT_FOUND/);
    assert.equal((await fx.client.list()).length, 1, 'the failed creates created nothing');
  });

  t('kiln rm leaves no QEMU process, socket, scratch disk or state row', async () => {
    assert.equal(fx.vmmProcesses().length, 1);
    const r = await fx.cli(['rm', id]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(fx.vmmProcesses().length, 0);
    assert.equal(existsSync(join(fx.stateDir, 'sandboxes', id)), false);
    assert.equal((await fx.client.list()).length, 0);
    await assert.rejects(fx.client.get(id), { code: 'SANDBOX_NOT_FOUND' });
  });
});
