import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import type { AgentClient, ProcInfo } from '@kiln/protocol';
import { alive, hasCode, startAgent, type TestAgent } from './test-agent.js';

const PTY_HELPER = fileURLToPath(new URL('./kiln-pty', import.meta.url));

let agent: TestAgent;
let client: AgentClient;
before(async () => {
  agent = await startAgent(['--pty-helper', PTY_HELPER]);
  client = await agent.connect();
});
after(async () => {
  client?.close();
  await agent?.stop();
});

/** Reads a process's output from `offset` until it exits (or, with `until`, until the text matches). */
async function readAll(c: AgentClient, pid: number, offset = 0, until?: RegExp) {
  let text = '';
  let dropped = 0;
  const types = new Set<string>();
  for (;;) {
    const r = await c.proc('proc.read', { pid, offset, waitMs: 5000 }, 0);
    dropped += r.dropped;
    for (const ch of r.chunks) {
      assert.equal(ch.offset, offset + (ch === r.chunks[0] ? r.dropped : 0) || ch.offset, 'chunks are contiguous');
      types.add(ch.type);
      text += Buffer.from(ch.data, 'base64').toString();
    }
    offset = r.nextOffset;
    if (until?.test(text)) return { text, dropped, offset, exit: null, types };
    if (r.exit) return { text, dropped, offset, exit: r.exit, types };
  }
}

async function waitExit(c: AgentClient, pid: number): Promise<ProcInfo> {
  for (;;) {
    const info = await c.proc('proc.wait', { pid, timeoutMs: 5000 }, 0);
    if (info.state === 'exited') return info;
  }
}

test('a background process outlives the session that started it; a new session reads all its output from offset 0', async () => {
  client.close(); // the agent serves one connection at a time
  const first = await agent.connect();
  const info = await first.proc('proc.start', { shell: 'for i in 1 2 3 4 5; do echo line$i; sleep 0.1; done; echo err >&2; exit 4', tag: 'loop' });
  assert.equal(info.state, 'running');
  assert.equal(info.tag, 'loop');
  assert.deepEqual(info.argv.slice(0, 2), ['/bin/sh', '-c']);
  first.close(); // the host session that started it goes away

  const second = await agent.connect();
  client = second;
  {
    const out = await readAll(second, info.pid);
    assert.equal(out.text, 'line1\nline2\nline3\nline4\nline5\nerr\n');
    assert.deepEqual(out.exit, { exitCode: 4, signal: null });
    assert.equal(out.dropped, 0);
    assert.deepEqual([...out.types].sort(), ['stderr', 'stdout']);
    const done = await second.proc('proc.get', { pid: info.pid });
    assert.equal(done.state, 'exited');
    assert.equal(done.exitCode, 4);
    assert.equal(done.outputBytes, 34);
    assert.ok(done.endedAt !== null && done.endedAt >= done.startedAt);
    const listed = await second.proc('proc.list', {});
    assert.ok(listed.processes.some((p) => p.pid === info.pid && p.state === 'exited'), 'exited processes stay listed');
    // A read from the middle starts there.
    const tail = await readAll(second, info.pid, 30);
    assert.equal(tail.text, 'err\n');
  }
});

test('a process nobody reads is never blocked: its ring overwrites and a late reader is told what it missed', async () => {
  const info = await client.proc('proc.start', { shell: 'head -c 3000000 /dev/zero; echo done' });
  const exited = await waitExit(client, info.pid);
  assert.equal(exited.exitCode, 0);
  assert.equal(exited.outputBytes, 3_000_005);
  assert.equal(exited.droppedBytes, 3_000_005 - 1024 * 1024);
  const first = await client.proc('proc.read', { pid: info.pid, offset: 0 });
  assert.equal(first.dropped, exited.droppedBytes);
  assert.equal(first.chunks[0]?.offset, exited.droppedBytes);
  const out = await readAll(client, info.pid);
  assert.equal(out.text.length, 1024 * 1024);
  assert.ok(out.text.endsWith('\0done\n'));
});

test('stdin feeds the process and closing it ends cat; a process started without stdin refuses input', async () => {
  const cat = await client.proc('proc.start', { argv: ['cat'], stdin: true });
  assert.equal(cat.stdinOpen, true);
  await client.proc('proc.stdin', { pid: cat.pid, data: Buffer.from('hello ').toString('base64') });
  await client.proc('proc.stdin', { pid: cat.pid, data: Buffer.from('world').toString('base64'), close: true });
  const out = await readAll(client, cat.pid);
  assert.equal(out.text, 'hello world');
  assert.deepEqual(out.exit, { exitCode: 0, signal: null });
  await assert.rejects(client.proc('proc.stdin', { pid: cat.pid, data: '' }), hasCode('NOT_RUNNING'));

  const noStdin = await client.proc('proc.start', { argv: ['sleep', '5'] });
  await assert.rejects(client.proc('proc.stdin', { pid: noStdin.pid, data: 'aGk=' }), hasCode('NOT_RUNNING'));
  await client.proc('proc.signal', { pid: noStdin.pid, signal: 'SIGKILL' });
  await waitExit(client, noStdin.pid);
});

test('signals reach the process group; a wait answers at the exit; unknown pids are NOT_FOUND', async () => {
  const sleeper = await client.proc('proc.start', { shell: 'sleep 1000 & sleep 1000; wait' });
  const pending = client.proc('proc.wait', { pid: sleeper.pid, timeoutMs: 60_000 }, 0);
  await client.proc('proc.signal', { pid: sleeper.pid, signal: 'SIGTERM' });
  const info = await pending;
  assert.equal(info.state, 'exited');
  assert.equal(info.signal, 'SIGTERM');
  assert.equal(info.exitCode, null);
  await assert.rejects(client.proc('proc.signal', { pid: sleeper.pid, signal: 'SIGKILL' }), hasCode('NOT_RUNNING'));
  await assert.rejects(client.proc('proc.signal', { pid: sleeper.pid, signal: 'SIGNOPE' }), hasCode('INVALID_ARGUMENT'));
  await assert.rejects(client.proc('proc.get', { pid: 4_000_000 }), hasCode('NOT_FOUND'));
  await assert.rejects(client.proc('proc.read', { pid: sleeper.pid, offset: 10 }), hasCode('INVALID_ARGUMENT'));
});

test('a timeout kills the process; start errors are coded', async () => {
  const info = await client.proc('proc.start', { argv: ['sleep', '100'], timeoutMs: 100 });
  const done = await waitExit(client, info.pid);
  assert.equal(done.timedOut, true);
  assert.equal(done.signal, 'SIGKILL');
  assert.ok(!alive(info.pid));
  await assert.rejects(client.proc('proc.start', { argv: ['/no/such/binary'] }), hasCode('NOT_FOUND'));
  await assert.rejects(client.proc('proc.start', { argv: ['true'], shell: 'true' }), hasCode('INVALID_ARGUMENT'));
  await assert.rejects(client.proc('proc.start', {}), hasCode('INVALID_ARGUMENT'));
  await assert.rejects(client.proc('proc.start', { argv: ['true'], user: 'no-such-user-kiln' }), hasCode('INVALID_ARGUMENT'));
});

test('a process runs as the user asked for, with its home and shell in the environment', async () => {
  const info = await client.proc('proc.start', { shell: 'id -u; echo "$USER $HOME"', user: 'nobody' });
  const out = await readAll(client, info.pid);
  assert.equal(info.user, 'nobody');
  assert.match(out.text, /^65534\nnobody \/nonexistent\n$/);
});

test('a PTY process: stty size sees the initial size and a resize, input echoes, the exit code comes back', async () => {
  const info = await client.proc('proc.start', { argv: ['/bin/sh'], pty: { cols: 100, rows: 30 }, env: { PS1: '$ ' } });
  assert.equal(info.pty, true);
  assert.equal(info.stdinOpen, true);
  const send = (s: string) => client.proc('proc.stdin', { pid: info.pid, data: Buffer.from(s).toString('base64') });
  await send('stty size; echo TERM=$TERM\n');
  let out = await readAll(client, info.pid, 0, /TERM=[a-z][^\r]*\r\n/);
  assert.match(out.text, /30 100\r\n/);
  assert.match(out.text, /TERM=xterm-256color\r\n/);
  assert.deepEqual([...out.types], ['pty']);
  await client.proc('proc.resize', { pid: info.pid, cols: 120, rows: 40 });
  await send('stty size\n');
  out = await readAll(client, info.pid, out.offset, /40 120\r\n/);
  await send('echo h""i\n'); // (the echoed line does not match what it prints)
  out = await readAll(client, info.pid, out.offset, /hi\r\n/);
  // Ctrl-C is a byte: the line discipline interrupts the foreground job (once it runs: it says so).
  await send("sh -c 'echo started; exec sleep 1000'\n");
  out = await readAll(client, info.pid, out.offset, /started\r\n/);
  await send('\x03');
  out = await readAll(client, info.pid, out.offset, /\^C/);
  await send('exit 3\n');
  out = await readAll(client, info.pid, out.offset);
  assert.deepEqual(out.exit, { exitCode: 3, signal: null });
  await assert.rejects(client.proc('proc.resize', { pid: info.pid, cols: 80, rows: 24 }), hasCode('NOT_RUNNING'));
  const plain = await client.proc('proc.start', { argv: ['true'] });
  await assert.rejects(client.proc('proc.resize', { pid: plain.pid, cols: 80, rows: 24 }), hasCode('INVALID_ARGUMENT'));
  await assert.rejects(client.proc('proc.resize', { pid: plain.pid, cols: 80, rows: 501 }), hasCode('INVALID_ARGUMENT'));
});

test('SIGKILL of a PTY process ends it with that signal', async () => {
  const info = await client.proc('proc.start', { argv: ['sleep', '1000'], pty: { cols: 80, rows: 24 } });
  await client.proc('proc.signal', { pid: info.pid, signal: 'SIGKILL' });
  const done = await waitExit(client, info.pid);
  assert.equal(done.signal, 'SIGKILL');
});
