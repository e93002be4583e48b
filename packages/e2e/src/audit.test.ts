/**
 * The audit log on a real microVM and a real kilnd: a scripted session (create, three execs,
 * an upload, destroy) leaves exactly its records, in order, with the right fields; a SIGKILL
 * of kilnd right after an exec returns loses no record (kilnd restarts, re-adopts the VM, the
 * chain goes on); every API call is recorded (kilnd's metadata reads too); `kiln audit verify`
 * passes on the live log, and editing one byte, deleting a record or swapping two makes it fail
 * naming the record. One VM for the file.
 */
import { after, before, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, cpSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { ExecEvent } from '@kiln/cli';
import { CLI, DaemonFixture, integrationSkipReason } from './harness.js';

const skip = integrationSkipReason();

interface Rec {
  seq: number;
  type: string;
  sandboxId?: string;
  requestId?: string;
  actor: { kind: string; uid?: number | null; pid?: number | null };
  data: Record<string, unknown>;
}

describe('audit log on a real microVM', { skip: skip ?? false }, () => {
  const fx = new DaemonFixture('audit');
  let id = '';
  const auditDir = () => join(fx.stateDir, 'audit');

  const run = async (argv: string[]): Promise<{ out: Buffer; exit: Extract<ExecEvent, { type: 'exit' }> }> => {
    const out: Buffer[] = [];
    let exit: Extract<ExecEvent, { type: 'exit' }> | null = null;
    for await (const ev of fx.client.exec(id, { argv, cwd: '/root' })) {
      if (ev.type === 'stdout') out.push(Buffer.from(ev.data, 'base64'));
      else if (ev.type === 'exit') exit = ev;
      else if (ev.type === 'error') throw new Error(`${ev.error.code}: ${ev.error.message}`);
    }
    assert.ok(exit, 'exit event');
    return { out: Buffer.concat(out), exit };
  };

  before(async () => {
    await fx.start();
  });
  after(async () => {
    await fx.close();
  });
  const t = (name: string, fn: () => Promise<void>) => fx.test(name, fn);

  t('a scripted session (with kilnd SIGKILLed right after an exec) leaves exactly its records, in order', async () => {
    // a follower sees the records as they become durable (until kilnd is killed)
    const follower = spawn(process.execPath, [CLI, '--socket', fx.socket, 'audit', '--follow', '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let followed = '';
    follower.stdout.on('data', (b: Buffer) => (followed += b.toString()));
    await new Promise((r) => setTimeout(r, 1000));
    const sb = await fx.client.create({ labels: { suite: 'audit' } });
    id = sb.id;
    process.stderr.write(`sandbox under test: ${id}\n`);
    const outs: number[] = [];
    const first = await run(['echo', 'one']);
    outs.push(first.out.length);
    const second = await run(['sh', '-c', 'echo two; exit 3']);
    outs.push(second.out.length);
    const third = await run(['uname', '-r']);
    outs.push(third.out.length);
    await new Promise((r) => setTimeout(r, 500));
    follower.kill();
    // The exec has returned (its exit event arrived): kill kilnd at once, without a chance to flush anything.
    await fx.crash();
    await fx.start(); // re-adopts the running VM
    const payload = randomBytes(100_000);
    const up = await fx.client.upload(id, '/root/payload.bin', Readable.from([payload]));
    assert.equal(up.bytes, payload.length);
    await fx.client.destroy(id);

    const r = await fx.cli(['audit', '--sandbox', id, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const recs = r.stdout.toString().trim().split('\n').map((l) => JSON.parse(l) as Rec);
    const shape = recs.map((x) => (x.type === 'lifecycle' ? `lifecycle ${String(x.data.from)}>${String(x.data.to)}` : x.type === 'api' ? `api ${String(x.data.method)} ${String(x.data.route)} ${String(x.data.status)}` : x.type));
    assert.deepEqual(shape, [
      'lifecycle null>creating',
      'lifecycle creating>running',
      'api POST /v1/sandboxes 201',
      'api POST /v1/sandboxes/:id/exec 200',
      'exec',
      'api POST /v1/sandboxes/:id/exec 200',
      'exec',
      'api POST /v1/sandboxes/:id/exec 200',
      'exec', // written before the exit event went out, so the SIGKILL could not lose it
      'file',
      'api PUT /v1/sandboxes/:id/files 200',
      'lifecycle running>stopping',
      'lifecycle stopping>destroyed',
      'api DELETE /v1/sandboxes/:id 204',
    ]);
    const seen = followed.trim().split('\n').map((l) => JSON.parse(l) as Rec).filter((x) => x.sandboxId === id);
    assert.deepEqual(seen.map((x) => x.seq), recs.slice(0, 9).map((x) => x.seq), 'kiln audit --follow streamed the same records up to the crash');
    const execs = recs.filter((x) => x.type === 'exec');
    assert.deepEqual(execs.map((x) => x.data.argv), [['echo', 'one'], ['sh', '-c', 'echo two; exit 3'], ['uname', '-r']]);
    assert.deepEqual(execs.map((x) => x.data.exitCode), [0, 3, 0]);
    assert.deepEqual(execs.map((x) => x.data.stdoutBytes), outs);
    assert.deepEqual(execs.map((x) => x.data.cwd), ['/root', '/root', '/root']);
    for (const e of execs) assert.ok(typeof e.data.durationMs === 'number' && e.data.durationMs >= 0);
    const file = recs.find((x) => x.type === 'file');
    assert.deepEqual(file?.data, { op: 'upload', path: '/root/payload.bin', bytes: payload.length, sha256: createHash('sha256').update(payload).digest('hex') });
    for (const x of recs) assert.deepEqual(x.actor, { kind: 'unix', uid: 0, gid: 0, pid: process.pid }, `record ${x.seq} names this test process as the caller`);
    // seqs are consecutive in the whole chain except for kilnd's own `opened` record at the restart
    const all = readdirSync(auditDir()).flatMap((f) => readFileSync(join(auditDir(), f), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec));
    const restartAt = all.findIndex((x, i) => i > 0 && x.type === 'audit' && x.data.event === 'opened');
    assert.ok(restartAt > 0, 'the restart is in the chain');
    assert.equal(all[restartAt - 1]?.type, 'exec', 'the last record before the SIGKILL is the third exec');
    assert.equal(all[restartAt]?.data.recoveredTornBytes, undefined, 'nothing half-written');
    // every API call has a record, reads of kilnd's own metadata included (they carry no
    // sandbox id, so the session's records above are exactly its own): the follower's call
    // and the fixture's health polls at each start
    const calls = all.filter((x) => x.type === 'api').map((x) => `${String(x.data.method)} ${String(x.data.route)}`);
    assert.ok(calls.includes('GET /v1/audit'), 'the --follow call is recorded');
    assert.ok(calls.filter((c) => c === 'GET /v1/health').length >= 2, 'the health polls of both starts are recorded');
  });

  t('kiln audit verify passes; an edited byte, a deleted record and two swapped records are each detected and named', async () => {
    const ok = await fx.cli(['audit', 'verify']);
    assert.equal(ok.code, 0, ok.stdout.toString() + ok.stderr);
    assert.match(ok.stdout.toString(), /^ok: \d+ records/);

    const files = readdirSync(auditDir()).sort();
    assert.equal(files.length, 1);
    const live = join(auditDir(), files[0] as string);
    const original = readFileSync(live);
    const lines = original.toString().trimEnd().split('\n');
    const seqOf = (i: number) => (JSON.parse(lines[i] as string) as Rec).seq;
    const tamper = (mutate: (ls: string[]) => string[]) => {
      const dir = mkdtempSync(join(tmpdir(), 'kiln-audit-copy-'));
      cpSync(auditDir(), dir, { recursive: true });
      writeFileSync(join(dir, files[0] as string), mutate([...lines]).join('\n') + '\n');
      return dir;
    };
    const verifyDir = async (dir: string) => {
      const r = await fx.cli(['audit', 'verify', '--dir', dir, '--json'], { kilnd: true });
      rmSync(dir, { recursive: true, force: true });
      assert.equal(r.code, 1, r.stdout.toString());
      return (JSON.parse(r.stdout.toString()) as { broken: { seq: number; reason: string; message: string } }).broken;
    };
    const k = 5; // an exec record of the session
    // one byte: the first digit of its stdoutBytes, replaced by another digit
    const editDigit = (l: string) => {
      const at = l.indexOf('"stdoutBytes":') + '"stdoutBytes":'.length;
      return l.slice(0, at) + (l[at] === '9' ? '8' : String(Number(l[at]) + 1)) + l.slice(at + 1);
    };
    let b = await verifyDir(tamper((ls) => ls.map((l, i) => (i === k ? editDigit(l) : l))));
    assert.equal(b.seq, seqOf(k));
    assert.equal(b.reason, 'edited');
    b = await verifyDir(tamper((ls) => ls.filter((_, i) => i !== k)));
    assert.deepEqual([b.seq, b.reason], [seqOf(k), 'missing']);
    b = await verifyDir(tamper((ls) => ls.map((l, i) => (i === k ? (ls[k + 1] as string) : i === k + 1 ? (ls[k] as string) : l))));
    assert.deepEqual([b.seq, b.reason], [seqOf(k), 'reordered']);

    // The live log, verified by kilnd while it keeps appending (every call is recorded, each
    // verify's own included): one byte changed in place is named, and changing it back heals.
    // The byte is written in place, never the whole file: a rewrite from an earlier copy would
    // delete the records appended since, which verify rightly reports as removed.
    const at = original.indexOf('"argv":["uname"') + 10;
    const poke = (byte: number) => {
      const fd = openSync(live, 'r+');
      try {
        writeSync(fd, Buffer.from([byte]), 0, 1, at);
      } finally {
        closeSync(fd);
      }
    };
    poke('U'.charCodeAt(0));
    const bad = await fx.cli(['audit', 'verify']);
    assert.equal(bad.code, 1);
    const uname = lines.findIndex((l) => l.includes('"argv":["uname"'));
    assert.match(bad.stdout.toString(), new RegExp(`^BROKEN at seq ${seqOf(uname)} \\(edited`));
    poke(original[at] as number);
    const healed = await fx.cli(['audit', 'verify', '--json']);
    assert.equal(healed.code, 0, healed.stdout.toString());
    const verifies = readFileSync(live, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Rec)
      .filter((x) => x.type === 'api' && x.data.route === '/v1/audit/verify');
    assert.equal(verifies.length, 3, 'each verify call is in the chain (ok, broken, healed)');
    assert.ok((JSON.parse(healed.stdout.toString()) as { head: { seq: number } }).head.seq >= (verifies[1]?.seq ?? Infinity), 'the healed verify covered the record of the failed one');
  });
});
