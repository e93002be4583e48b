import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { AgentClient } from '@kiln/protocol';
import { alive, hasCode, startAgent, type TestAgent } from './test-agent.js';

let agent: TestAgent;
let client: AgentClient;
before(async () => {
  agent = await startAgent();
  client = await agent.connect();
});
after(async () => {
  client?.close();
  await agent?.stop();
});

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function run(args: Parameters<AgentClient['exec']>[0]) {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const result = await client.exec(args, { onStdout: (b) => void out.push(b), onStderr: (b) => void err.push(b) }).result;
  return { ...result, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}

test('exit codes come back', async () => {
  assert.equal((await run({ argv: ['true'] })).exitCode, 0);
  const r = await run({ shell: 'exit 3' });
  assert.equal(r.exitCode, 3);
  assert.equal(r.signal, null);
  assert.equal(r.timedOut, false);
});

test('a missing argv[0] is NOT_FOUND; a missing command in a shell is exit 127', async () => {
  await assert.rejects(client.exec({ argv: ['/no/such/binary'] }).result, hasCode('NOT_FOUND'));
  assert.equal((await run({ shell: 'no-such-command-kiln' })).exitCode, 127);
});

test('bad exec args are INVALID_ARGUMENT', async () => {
  await assert.rejects(client.exec({ argv: ['true'], shell: 'true' }).result, hasCode('INVALID_ARGUMENT'));
  await assert.rejects(client.exec({}).result, hasCode('INVALID_ARGUMENT'));
  await assert.rejects(client.exec({ argv: ['true'], cwd: '/no/such/dir' }).result, hasCode('NOT_FOUND'));
  await assert.rejects(client.exec({ argv: ['true'], user: 'no-such-user-kiln' }).result, hasCode('INVALID_ARGUMENT'));
});

test('env and cwd are applied', async () => {
  const r = await run({ shell: 'echo "$FOO"; pwd', env: { FOO: 'bar baz' }, cwd: '/tmp' });
  assert.equal(r.stdout, 'bar baz\n/tmp\n');
});

test('stdout and stderr are separate and arrive while the command runs', async () => {
  const events: { s: string; t: number; text: string }[] = [];
  const t0 = Date.now();
  const h = client.exec(
    { shell: 'echo one; echo err-one >&2; sleep 1; echo two; echo err-two >&2' },
    {
      onStdout: (b) => void events.push({ s: 'out', t: Date.now() - t0, text: b.toString() }),
      onStderr: (b) => void events.push({ s: 'err', t: Date.now() - t0, text: b.toString() }),
    },
  );
  const r = await h.result;
  const tResult = Date.now() - t0;
  assert.equal(r.exitCode, 0);
  const out = events.filter((e) => e.s === 'out');
  const err = events.filter((e) => e.s === 'err');
  assert.equal(out.map((e) => e.text).join(''), 'one\ntwo\n');
  assert.equal(err.map((e) => e.text).join(''), 'err-one\nerr-two\n');
  assert.ok((out[0]?.t ?? Infinity) < tResult - 700, `first chunk at ${out[0]?.t} ms, result at ${tResult} ms`);
  assert.ok((err[0]?.t ?? Infinity) < tResult - 700, `first stderr chunk at ${err[0]?.t} ms`);
});

test('10 MB of output arrives intact, also through a slow consumer', async () => {
  const file = join(agent.dir, 'ten-mb');
  for (const slow of [false, true]) {
    const chunks: Buffer[] = [];
    const r = await client.exec(
      { shell: `head -c 10485760 /dev/urandom | tee ${file}` },
      { onStdout: (b) => (chunks.push(b), slow ? new Promise((res) => setTimeout(res, 1)) : undefined) },
    ).result;
    assert.equal(r.exitCode, 0);
    const got = Buffer.concat(chunks);
    assert.equal(got.length, 10 * 1024 * 1024);
    assert.equal(sha(got), sha(readFileSync(file)));
  }
});

test('stdin is piped to the command; without stdin it reads /dev/null', async () => {
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const out: Buffer[] = [];
  const h = client.exec({ argv: ['sha256sum'], stdin: true }, { onStdout: (b) => void out.push(b) });
  for (let off = 0; off < data.length; off += 100_000) await h.writeStdin(data.subarray(off, off + 100_000));
  h.endStdin();
  const r = await h.result;
  assert.equal(r.exitCode, 0);
  assert.equal(Buffer.concat(out).toString().split(' ')[0], sha(data));

  const r2 = await run({ argv: ['cat'] });
  assert.equal(r2.exitCode, 0);
  assert.equal(r2.stdout, '');
});

test('exec.signal reaches the command; self-kill is reported as a signal', async () => {
  // Sent at once, the signal overtakes the spawn: the agent must queue it, not lose it.
  const h = client.exec({ argv: ['sleep', '30'] });
  await h.signal('SIGTERM');
  const r = await h.result;
  assert.equal(r.exitCode, null);
  assert.equal(r.signal, 'SIGTERM');

  const self = await run({ shell: 'kill -KILL $$' });
  assert.equal(self.signal, 'SIGKILL');
  assert.equal(self.exitCode, null);

  await assert.rejects(h.signal('SIGTERM'), hasCode('NOT_FOUND'), 'signalling a finished exec');
  const h2 = client.exec({ argv: ['sleep', '30'] });
  await new Promise((r) => setTimeout(r, 100));
  await assert.rejects(h2.signal('SIGNOPE'), hasCode('INVALID_ARGUMENT'));
  await h2.signal('SIGKILL');
  assert.equal((await h2.result).signal, 'SIGKILL');
});

test('a timeout kills the whole process group', async () => {
  const t0 = Date.now();
  const r = await run({ shell: 'sleep 30 & echo $!; sleep 30', timeoutMs: 300 });
  assert.equal(r.timedOut, true);
  assert.equal(r.signal, 'SIGKILL');
  assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
  const bg = Number(r.stdout.trim());
  assert.ok(bg > 0);
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(alive(bg), false, `background child ${bg} survived`);
});

test('user runs the command as that passwd user', { skip: process.getuid?.() !== 0 ? 'needs root' : false }, async () => {
  const r = await run({ shell: 'id -u; id -g; echo "$USER $HOME"; pwd', user: 'nobody' });
  assert.equal(r.exitCode, 0);
  const [uid, , who, cwd] = r.stdout.trim().split('\n');
  assert.equal(uid, '65534');
  assert.match(who ?? '', /^nobody /);
  assert.equal(cwd, '/', 'falls back to / when the home directory does not exist');
});
