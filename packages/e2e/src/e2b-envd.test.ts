/**
 * kiln as a backend for the real `e2b` SDK, data plane (kiln's envd: packages/daemon/src/e2b/envd):
 * the SDK configured by the three variables only, one sandbox shared by the cases (VMs are slow
 * under TCG). Commands (callbacks, exit codes, CommandExitError, user and cwd defaults, the
 * sandbox's envs), background commands (wait, kill, connect(pid) from a second client, list),
 * stdin, PTYs (input, resize), files (text, bytes, streams, several at once, list with depth,
 * exists, getInfo, makeDir, rename, remove), watchDir, and the same through
 * @e2b/code-interpreter's Sandbox class.
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { CommandExitError, FileNotFoundError, FileType, Sandbox, TimeoutError, type FilesystemEvent } from 'e2b';
import { Sandbox as CodeInterpreter } from '@e2b/code-interpreter';
import { integrationSkipReason } from './harness.js';
import { E2bFixture } from './e2b-harness.js';

const skip = integrationSkipReason();

async function until<T>(what: string, fn: () => T | undefined | false, limitMs = 60_000): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the e2b SDK against kiln: data plane (envd)', { skip: skip ?? false }, () => {
  const fx = new E2bFixture('e2b-envd');
  let sbx: Sandbox;

  before(async () => {
    await fx.start();
    fx.useEnv();
    sbx = await Sandbox.create({ envs: { FROM_CREATE: 'create-env' } });
    fx.track(sbx.sandboxId);
  });
  after(async () => {
    await sbx?.kill().catch(() => undefined);
    await fx.close();
  });
  const t = (name: string, fn: () => Promise<void>) => fx.test(name, fn);

  t('isRunning: GET /health answers 204', async () => {
    assert.equal(await sbx.isRunning(), true);
  });

  t('commands.run: stdout/stderr callbacks and results; as `user` in /home/user with the sandbox envs; root on request', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const r = await sbx.commands.run('echo hi; echo oops >&2; whoami; pwd; echo "$FROM_CREATE $PER_CALL"', {
      envs: { PER_CALL: 'call-env' },
      onStdout: (d) => void out.push(d),
      onStderr: (d) => void err.push(d),
    });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, 'hi\nuser\n/home/user\ncreate-env call-env\n');
    assert.equal(r.stderr, 'oops\n');
    assert.equal(out.join(''), r.stdout);
    assert.equal(err.join(''), 'oops\n');
    const root = await sbx.commands.run('whoami; pwd', { user: 'root' });
    assert.equal(root.stdout, 'root\n/root\n');
    const cwd = await sbx.commands.run('pwd', { cwd: '/tmp' });
    assert.equal(cwd.stdout, '/tmp\n');
  });

  t('exit codes: a non-zero exit rejects with CommandExitError carrying the code and output', async () => {
    await assert.rejects(sbx.commands.run('echo before; exit 3'), (e: unknown) => {
      assert.ok(e instanceof CommandExitError);
      assert.equal(e.exitCode, 3);
      assert.equal(e.stdout, 'before\n');
      assert.match(e.error ?? '', /exit status 3/);
      return true;
    });
  });

  t('background commands: wait(), list(), connect(pid) from a second client, kill()', async () => {
    const h = await sbx.commands.run('echo started; sleep 600', { background: true });
    assert.ok(h.pid > 0);
    const listed = await sbx.commands.list();
    assert.ok(listed.some((p) => p.pid === h.pid && p.cmd === '/bin/bash'), 'list shows the process');
    // A second client (its own Sandbox object and connection) attaches by pid.
    const other = await Sandbox.connect(sbx.sandboxId);
    const seen: string[] = [];
    const attached = await other.commands.connect(h.pid, { onStdout: (d) => void seen.push(d) });
    await until('the second client to see the output', () => seen.join('').includes('started'));
    assert.equal(await sbx.commands.kill(h.pid), true);
    await assert.rejects(attached.wait(), (e: unknown) => e instanceof CommandExitError && /killed/.test(e.error ?? ''));
    await assert.rejects(h.wait(), CommandExitError);
    assert.equal(await sbx.commands.kill(h.pid), false, 'a process that is gone cannot be killed');
    const done = await sbx.commands.run('sleep 1; echo done', { background: true });
    const r = await done.wait();
    assert.equal(r.stdout, 'done\n');
  });

  t('timeoutMs: a command outliving its deadline is killed (TimeoutError), as envd does; timeoutMs 0 means none', async () => {
    const before = Date.now();
    await assert.rejects(sbx.commands.run('sleep 40; echo late', { timeoutMs: 3000 }), TimeoutError);
    assert.ok(Date.now() - before < 40_000, 'the call ended at its deadline');
    const gone = async () => !(await sbx.commands.list()).some((p) => p.args.includes('sleep 40; echo late'));
    for (let i = 0; i < 50 && !(await gone()); i++) await new Promise((r) => setTimeout(r, 200));
    assert.ok(await gone(), 'the command was killed with its deadline');
    const r = await sbx.commands.run('sleep 1; echo fine', { timeoutMs: 0 });
    assert.equal(r.stdout, 'fine\n');
  });

  t('stdin: sendStdin then closeStdin', async () => {
    const h = await sbx.commands.run('cat; echo "[eof]"', { background: true, stdin: true });
    await sbx.commands.sendStdin(h.pid, 'hello ');
    await sbx.commands.sendStdin(h.pid, 'stdin\n');
    await h.closeStdin();
    const r = await h.wait();
    assert.equal(r.stdout, 'hello stdin\n[eof]\n');
  });

  t('pty.create + sendInput + resize: a terminal of the asked size that takes keystrokes', async () => {
    let screen = '';
    const dec = new TextDecoder();
    const term = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => void (screen += dec.decode(d)) });
    const enc = new TextEncoder();
    await sbx.pty.sendInput(term.pid, enc.encode('stty size; echo "tty=$(tty)"\n'));
    await until('stty size 24 80', () => screen.includes('24 80') && screen.includes('tty=/dev/pts'));
    await sbx.pty.resize(term.pid, { cols: 100, rows: 30 });
    await sbx.pty.sendInput(term.pid, enc.encode('stty size\n'));
    await until('stty size 30 100', () => screen.includes('30 100'));
    await sbx.pty.sendInput(term.pid, enc.encode('exit 0\n'));
    const r = await term.wait();
    assert.equal(r.exitCode, 0);
  });

  t('files.write/read: text, bytes, streams, several files at once; owned by user, mode 0644', async () => {
    const info = await sbx.files.write('notes/a.txt', 'hello file');
    assert.equal(info.path, '/home/user/notes/a.txt');
    assert.equal(await sbx.files.read('notes/a.txt'), 'hello file');
    const bytes = new Uint8Array(300_000).map((_, i) => (i * 7) % 256);
    await sbx.files.write('/tmp/bin.dat', bytes.buffer);
    assert.deepEqual(await sbx.files.read('/tmp/bin.dat', { format: 'bytes' }), bytes);
    // A stream goes as application/octet-stream (envd ≥ 0.5.7).
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode('streamed '));
        c.enqueue(new TextEncoder().encode('upload'));
        c.close();
      },
    });
    await sbx.files.write('/home/user/s.txt', stream);
    const rs = await sbx.files.read('/home/user/s.txt', { format: 'stream' });
    let text = '';
    for await (const chunk of rs as unknown as AsyncIterable<Uint8Array>) text += new TextDecoder().decode(chunk);
    assert.equal(text, 'streamed upload');
    const many = await sbx.files.write([
      { path: 'multi/one.txt', data: 'one' },
      { path: '/home/user/multi/two.txt', data: new Blob(['two']) },
    ]);
    assert.deepEqual(many.map((w) => w.path).sort(), ['/home/user/multi/one.txt', '/home/user/multi/two.txt']);
    assert.equal(await sbx.files.read('multi/two.txt'), 'two');
    const st = await sbx.files.getInfo('notes/a.txt');
    assert.equal(st.type, FileType.FILE);
    assert.equal(st.size, 10);
    assert.equal(st.owner, 'user');
    assert.equal(st.group, 'user');
    assert.equal(st.mode, 0o644);
    assert.equal(await sbx.files.read('empty-missing.txt').catch((e: unknown) => e instanceof FileNotFoundError), true);
    await sbx.files.write('/tmp/empty', '');
    assert.equal(await sbx.files.read('/tmp/empty'), '');
    // Reads and writes are the user's own: root's files are root's.
    await sbx.files.write('/root/secret.txt', 'root only', { user: 'root' });
    assert.equal(await sbx.files.read('/root/secret.txt', { user: 'root' }), 'root only');
    await assert.rejects(sbx.files.read('/root/secret.txt'), /Permission denied/);
    await assert.rejects(sbx.files.write('/root/nope.txt', 'x'), /Permission denied/);
  });

  t('files: list with depth, exists, makeDir, rename, remove', async () => {
    assert.equal(await sbx.files.makeDir('tree/sub/deeper'), true);
    assert.equal(await sbx.files.makeDir('tree/sub/deeper'), false, 'an existing directory is false');
    await sbx.files.write('tree/f1.txt', '1');
    await sbx.files.write('tree/sub/f2.txt', '2');
    const one = await sbx.files.list('tree');
    assert.deepEqual(one.map((e) => e.name), ['f1.txt', 'sub']);
    const two = await sbx.files.list('tree', { depth: 3 });
    assert.deepEqual(two.map((e) => e.path), ['/home/user/tree/f1.txt', '/home/user/tree/sub', '/home/user/tree/sub/deeper', '/home/user/tree/sub/f2.txt']);
    assert.equal(two[1]?.type, FileType.DIR);
    assert.equal(await sbx.files.exists('tree/f1.txt'), true);
    assert.equal(await sbx.files.exists('tree/nope'), false);
    const moved = await sbx.files.rename('tree/f1.txt', 'tree/sub/moved.txt');
    assert.equal(moved.path, '/home/user/tree/sub/moved.txt');
    assert.equal(await sbx.files.read('tree/sub/moved.txt'), '1');
    await sbx.files.remove('tree');
    assert.equal(await sbx.files.exists('tree'), false);
  });

  t('watchDir: events for files written in the directory', async () => {
    await sbx.files.makeDir('watched');
    const events: FilesystemEvent[] = [];
    const w = await sbx.files.watchDir('watched', (e) => void events.push(e), { timeoutMs: 0 });
    await sbx.files.write('watched/new.txt', 'x');
    await sbx.commands.run('echo more >> ~/watched/new.txt; rm ~/watched/new.txt');
    await until('create, write and remove events', () =>
      events.some((e) => e.name === 'new.txt' && e.type === 'write') && events.some((e) => e.name === 'new.txt' && e.type === 'remove'),
    );
    assert.ok(!(await sbx.commands.list()).some((p) => p.cmd.includes('node')), 'the watcher is not one of the user\'s commands');
    await w.stop();
  });

  t('the watcher calls Python\'s sync SDK uses (CreateWatcher, GetWatcherEvents, RemoveWatcher), spoken as the SDKs do', async () => {
    const rpc = async (method: string, body: unknown) => {
      const res = await fetch(`${fx.origin}/filesystem.Filesystem/${method}`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'connect-protocol-version': '1',
          'e2b-sandbox-id': sbx.sandboxId,
          'e2b-sandbox-port': '49983',
          'x-access-token': (sbx as unknown as { envdAccessToken: string }).envdAccessToken,
        },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    await sbx.files.makeDir('polled/deep');
    const created = await rpc('CreateWatcher', { path: 'polled', recursive: true });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const watcherId = created.body.watcherId as string;
    await sbx.files.write('polled/deep/file.txt', 'x');
    const seen: Array<{ name: string; type: string }> = [];
    for (let i = 0; i < 100 && !seen.some((e) => e.name === 'deep/file.txt'); i++) {
      const got = await rpc('GetWatcherEvents', { watcherId });
      assert.equal(got.status, 200);
      seen.push(...(got.body.events as Array<{ name: string; type: string }>));
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(seen.some((e) => e.name === 'deep/file.txt' && (e.type === 'EVENT_TYPE_CREATE' || e.type === 'EVENT_TYPE_WRITE')), JSON.stringify(seen));
    assert.equal((await rpc('RemoveWatcher', { watcherId })).status, 200);
    const again = await rpc('GetWatcherEvents', { watcherId });
    assert.deepEqual([again.status, again.body.code], [404, 'not_found']);
  });

  t('what the SDK did in the guest is in kiln\'s audit log, as with kiln\'s own API (process starts and kills, file writes, mkdirs, moves, removals)', async () => {
    const res = await fx.daemon.client.call<{ records: Array<{ type: string; data: Record<string, unknown> }> }>('GET', `/v1/audit?sandbox=sb-${sbx.sandboxId}&limit=10000`);
    const recs = res.records;
    const has = (type: string, pred: (d: Record<string, unknown>) => boolean) => recs.some((r) => r.type === type && pred(r.data));
    assert.ok(has('process', (d) => d.op === 'start' && typeof d.pid === 'number' && (d.argv as string[])[0] === '/bin/bash' && d.user === 'user' && d.cwd === '/home/user'), 'process start');
    assert.ok(has('process', (d) => d.op === 'start' && d.user === 'root'), 'a root process start');
    assert.ok(has('process', (d) => d.op === 'signal' && d.signal === 'SIGKILL' && d.errorCode === undefined), 'the kill');
    assert.ok(has('file', (d) => d.op === 'upload' && d.path === '/home/user/notes/a.txt' && d.bytes === 10), 'an upload with its size');
    assert.ok(has('file', (d) => d.op === 'upload' && d.path === '/root/nope.txt' && typeof d.errorCode === 'string'), 'a refused upload');
    assert.ok(has('file', (d) => d.op === 'mkdir' && d.path === '/home/user/tree/sub/deeper'), 'mkdir');
    assert.ok(has('file', (d) => d.op === 'rename' && d.path === '/home/user/tree/f1.txt' && d.to === '/home/user/tree/sub/moved.txt'), 'rename');
    assert.ok(has('file', (d) => d.op === 'remove' && d.path === '/home/user/tree'), 'remove');
  });

  t('@e2b/code-interpreter\'s Sandbox class: commands and files through the sandbox API', async () => {
    const ci = await CodeInterpreter.connect(sbx.sandboxId);
    const r = await ci.commands.run('echo ci-ok; whoami');
    assert.equal(r.stdout, 'ci-ok\nuser\n');
    await ci.files.write('ci.txt', 'from code-interpreter');
    assert.equal(await ci.files.read('ci.txt'), 'from code-interpreter');
    assert.ok((await ci.files.list('.')).some((e) => e.name === 'ci.txt'));
  });
});
