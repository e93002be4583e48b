/**
 * Background processes, terminals and the guest's non-root user on a real microVM: a process
 * outlives the HTTP client that watched it and is re-attached from another client from offset
 * 0; wait, signals, kill, stdin; a PTY over a WebSocket (stty size after a resize, echo, Ctrl-C,
 * the exit code); exec as `user`. One sandbox for the whole file (a TCG boot costs tens of seconds).
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { KilnClient } from '@kiln/cli';
import { DaemonFixture, integrationSkipReason } from './harness.js';

const skip = integrationSkipReason();

interface Info {
  pid: number;
  state: string;
  exitCode: number | null;
  signal: string | null;
  pty: boolean;
  user: string;
  outputBytes: number;
  droppedBytes: number;
  tag: string | null;
}

/** Reads NDJSON lines from a response until `stop` says so (then drops the connection) or it ends. */
async function lines(res: IncomingMessage, stop?: (ev: Record<string, unknown>) => boolean): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  let buf = '';
  for await (const chunk of res) {
    buf += (chunk as Buffer).toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const ev = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>;
      buf = buf.slice(nl + 1);
      out.push(ev);
      if (stop?.(ev)) {
        res.destroy();
        return out;
      }
    }
  }
  return out;
}

/** An assert.rejects matcher for a kiln error code. */
const code = (c: string) => (err: unknown) => {
  assert.equal((err as { code?: string }).code, c, String(err));
  return true;
};

const text = (evs: Array<Record<string, unknown>>, type = 'stdout') =>
  Buffer.concat(evs.filter((e) => e.type === type).map((e) => Buffer.from(e.data as string, 'base64'))).toString();

describe('background processes and terminals on a real microVM', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('processes');
  let id = '';
  const base = () => `/v1/sandboxes/${id}`;

  before(async () => {
    await fx.start();
    const r = await fx.cli(['create', '--memory', '1024', '--cpus', '2', '--label', 'suite=processes'], { timeoutMs: 400_000 });
    assert.equal(r.code, 0, `kiln create failed: ${r.stderr}`);
    id = r.stdout.toString().trim().split('\n').at(-1) ?? '';
    process.stderr.write(`sandbox under test: ${id}\n`);
  });
  after(async () => {
    await fx.close();
  });
  const t = (name: string, fn: () => Promise<void>) => fx.test(name, fn);

  t('exec as user: whoami, uid, HOME, a writable home, umask 022; root stays the default', async () => {
    const r = await fx.client.call<unknown>('GET', `${base()}`);
    assert.ok(r);
    const asUser = [];
    for await (const ev of fx.client.exec(id, { shell: 'whoami; id -u; id -g; echo "$HOME"; touch ~/f && stat -c %U:%a ~/f ~; umask; readlink -f "$(command -v bash)"', user: 'user' })) asUser.push(ev);
    const out = Buffer.concat(asUser.filter((e) => e.type === 'stdout').map((e) => Buffer.from((e as { data: string }).data, 'base64'))).toString();
    assert.equal(out, 'user\n1000\n1000\n/home/user\nuser:644\nuser:755\n0022\n/usr/bin/bash\n');
    assert.equal((await fx.sh(id, 'whoami')).out, 'root\n');
  });

  t('a process outlives the client that watched it; a second client re-attaches from offset 0, waits, and sees the exit', async () => {
    const started = await fx.client.call<Info>('POST', `${base()}/processes`, { shell: 'for i in $(seq 1 5); do echo line$i; sleep 1; done', tag: 'loop' });
    assert.equal(started.state, 'running');
    assert.equal(started.tag, 'loop');
    // The first client follows, sees line1, and goes away.
    const first = await fx.client.raw({ method: 'GET', path: `${base()}/processes/${started.pid}/output?follow=true` });
    assert.equal(first.statusCode, 200);
    const seen = await lines(first, (ev) => ev.type === 'stdout');
    assert.match(text(seen), /^line1\n/);

    const second = new KilnClient(fx.socket);
    const waited = await second.call<Info>('GET', `${base()}/processes/${started.pid}/wait`);
    assert.equal(waited.state, 'exited');
    assert.equal(waited.exitCode, 0);
    const evs = await lines(await second.raw({ method: 'GET', path: `${base()}/processes/${started.pid}/output?offset=0&follow=true` }));
    assert.equal(text(evs), 'line1\nline2\nline3\nline4\nline5\n');
    assert.deepEqual(evs.at(-1), { type: 'exit', exitCode: 0, signal: null });
    assert.equal(evs[0]?.offset, 0);
    // From a later offset, without follow.
    const tail = await lines(await second.raw({ method: 'GET', path: `${base()}/processes/${started.pid}/output?offset=24` }));
    assert.equal(text(tail), 'line5\n');
    const list = await second.call<{ processes: Info[] }>('GET', `${base()}/processes`);
    assert.ok(list.processes.some((p) => p.pid === started.pid && p.state === 'exited' && p.outputBytes === 30));
  });

  t('signal and kill a sleep; stdin to cat; bad requests are coded', async () => {
    const sleeper = await fx.client.call<Info>('POST', `${base()}/processes`, { argv: ['sleep', '1000'] });
    await fx.client.call('POST', `${base()}/processes/${sleeper.pid}/signal`, { signal: 'SIGTERM' });
    const termed = await fx.client.call<Info>('GET', `${base()}/processes/${sleeper.pid}/wait`);
    assert.equal(termed.signal, 'SIGTERM');
    const other = await fx.client.call<Info>('POST', `${base()}/processes`, { argv: ['sleep', '1000'] });
    await fx.client.call('DELETE', `${base()}/processes/${other.pid}`);
    assert.equal((await fx.client.call<Info>('GET', `${base()}/processes/${other.pid}/wait`)).signal, 'SIGKILL');

    const cat = await fx.client.call<Info>('POST', `${base()}/processes`, { argv: ['cat'], stdin: true });
    await fx.client.call('POST', `${base()}/processes/${cat.pid}/stdin`, { data: Buffer.from('hello ').toString('base64') });
    const { Readable } = await import('node:stream');
    await fx.client.check(await fx.client.raw({ method: 'POST', path: `${base()}/processes/${cat.pid}/stdin`, body: Readable.from([Buffer.from('world')]) }));
    await fx.client.call('POST', `${base()}/processes/${cat.pid}/stdin/close`);
    const evs = await lines(await fx.client.raw({ method: 'GET', path: `${base()}/processes/${cat.pid}/output?follow=true` }));
    assert.equal(text(evs), 'hello world');
    assert.deepEqual(evs.at(-1), { type: 'exit', exitCode: 0, signal: null });

    await assert.rejects(fx.client.call('GET', `${base()}/processes/4000000`), code('PROCESS_NOT_FOUND'));
    await assert.rejects(fx.client.call('POST', `${base()}/processes/${cat.pid}/signal`, { signal: 'SIGKILL' }), code('PROCESS_NOT_RUNNING'));
    await assert.rejects(fx.client.call('POST', `${base()}/processes`, { argv: ['true'], bogus: 1 }), code('INVALID_ARGUMENT'));
    await assert.rejects(fx.client.call('POST', `${base()}/processes/${cat.pid}/resize`, { cols: 5000, rows: 30 }), code('INVALID_ARGUMENT'));
  });

  t('a PTY over a WebSocket: stty size after a resize, echo, Ctrl-C, the exit code; the session is audited', async () => {
    const ws = new WebSocket(`ws+unix://${fx.socket}:${base()}/pty?cols=80&rows=24&user=user`);
    let screen = '';
    let exit: Record<string, unknown> | null = null;
    const waiters: Array<() => void> = [];
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) screen += data.toString();
      else {
        const msg = JSON.parse(data.toString()) as Record<string, unknown>;
        if (msg.type === 'exit') exit = msg;
      }
      for (const w of waiters.splice(0)) w();
    });
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    ws.on('close', () => {
      for (const w of waiters.splice(0)) w();
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const until = async (re: RegExp) => {
      while (!re.test(screen)) {
        if (ws.readyState !== ws.OPEN) throw new Error(`socket closed; screen so far: ${JSON.stringify(screen)}`);
        await new Promise<void>((r) => waiters.push(r));
      }
    };
    const type = (s: string) => ws.send(Buffer.from(s));
    type('stty size; whoami\n');
    await until(/24 80\r\nuser\r\n/);
    ws.send(JSON.stringify({ type: 'resize', cols: 100, rows: 30 }));
    type('stty size\n');
    await until(/30 100\r\n/);
    type('echo h""i\n'); // (the echoed line does not match what it prints)
    await until(/hi\r\n/);
    // Ctrl-C is byte 0x03: the line discipline interrupts the foreground job (once it runs: it says so).
    type("sh -c 'echo started; exec sleep 1000'\n");
    await until(/started\r\n/);
    const mark = screen.length;
    type('\x03');
    await until(new RegExp(`^[\\s\\S]{${mark}}[\\s\\S]*\\^C`));
    type('exit 3\n');
    await closed;
    assert.deepEqual(exit, { type: 'exit', exitCode: 3, signal: null });

    // The end record is written once kilnd saw the socket close.
    let terminal: Array<{ type: string; data: Record<string, unknown> }> = [];
    for (let i = 0; i < 100 && terminal.length < 2; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      const records = await fx.client.call<{ records: Array<{ type: string; data: Record<string, unknown> }> }>('GET', `/v1/audit?sandbox=${id}`);
      terminal = records.records.filter((r) => r.type === 'terminal');
    }
    assert.deepEqual(terminal.map((r) => r.data.event), ['start', 'end']);
    const end = terminal[1]?.data ?? {};
    assert.ok((end.bytesIn as number) > 20 && (end.bytesOut as number) > 20, JSON.stringify(end));
    assert.equal(end.exitCode, 3);
    assert.equal(end.input, undefined, 'keystrokes are not recorded by default');
  });

  t('files: a directory round trip as tar streams, and rename', async () => {
    const src = mkdtempSync(join(tmpdir(), 'kiln-tar-src-'));
    const dst = mkdtempSync(join(tmpdir(), 'kiln-tar-dst-'));
    try {
      mkdirSync(join(src, 'sub/deeper'), { recursive: true });
      writeFileSync(join(src, 'a.txt'), 'alpha\n');
      writeFileSync(join(src, 'sub/deeper/b.bin'), Buffer.alloc(300_000, 7));
      const tar = spawn('tar', ['-C', src, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
      const up = await fx.client.raw({ method: 'PUT', path: `${base()}/files/tar?path=/tmp/up/dir`, body: tar.stdout });
      const upBody = await lines(up).catch(() => []);
      assert.equal(up.statusCode, 200, JSON.stringify(upBody));
      assert.equal((await fx.sh(id, 'cat /tmp/up/dir/a.txt; wc -c < /tmp/up/dir/sub/deeper/b.bin')).out, 'alpha\n300000\n');

      await fx.client.call('POST', `${base()}/files/rename`, { from: '/tmp/up/dir/a.txt', to: '/tmp/up/dir/sub/renamed.txt' });
      const down = await fx.client.raw({ method: 'GET', path: `${base()}/files/tar?path=/tmp/up/dir` });
      assert.equal(down.statusCode, 200);
      assert.equal(down.headers['content-type'], 'application/x-tar');
      const untar = spawn('tar', ['-C', dst, '-xf', '-'], { stdio: ['pipe', 'inherit', 'inherit'] });
      down.pipe(untar.stdin);
      assert.equal(await new Promise((r) => untar.once('close', r)), 0);
      assert.equal(readFileSync(join(dst, 'sub/renamed.txt'), 'utf8'), 'alpha\n');
      assert.deepEqual(readFileSync(join(dst, 'sub/deeper/b.bin')), Buffer.alloc(300_000, 7));
      await assert.rejects(fx.client.call('POST', `${base()}/files/rename`, { from: '/tmp/up/none', to: '/tmp/up/x' }), code('GUEST_NOT_FOUND'));
      await assert.rejects(fx.client.call('GET', `${base()}/files/tar?path=/tmp/up/dir/sub/renamed.txt`), code('INVALID_ARGUMENT'));
    } finally {
      rmSync(src, { recursive: true, force: true });
      rmSync(dst, { recursive: true, force: true });
    }
  });
});
