import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, readdirSync, unlinkSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog } from './log.js';
import { listChainFiles } from './files.js';
import { recordLine, seal, type AuditRecord } from './record.js';
import { snapshotFiles, verifyChain, verifySnapshot } from './verify.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'kiln-audit-'));

async function filled(n: number, opts: { maxFileBytes?: number } = {}): Promise<{ dir: string; log: AuditLog }> {
  const dir = tmp();
  const log = await AuditLog.open({ dir, ...opts });
  for (let i = 0; i < n; i++) await log.append({ type: 'exec', sandboxId: 'sb-000000000001', data: { argv: ['echo', `n${i}`], exitCode: 0 } });
  return { dir, log };
}

const fileOf = (dir: string) => listChainFiles(dir)[0]?.path ?? '';
const linesOf = (path: string) => readFileSync(path, 'utf8').split('\n').slice(0, -1);
const writeLines = (path: string, lines: string[]) => writeFileSync(path, lines.map((l) => l + '\n').join(''));

test('audit: a written chain verifies; records are canonical lines with seq, time, prevHash, hash', async () => {
  const { dir, log } = await filled(5);
  try {
    const r = verifyChain(dir, { expectHead: log.head });
    assert.equal(r.ok, true, JSON.stringify(r.broken));
    assert.equal(r.records, 6); // the `opened` record + 5
    assert.deepEqual(r.head, log.head);
    const recs = linesOf(fileOf(dir)).map((l) => JSON.parse(l) as AuditRecord);
    assert.deepEqual(recs.map((x) => x.seq), [1, 2, 3, 4, 5, 6]);
    assert.equal(recs[0]?.prevHash, '0'.repeat(64));
    for (let i = 1; i < recs.length; i++) assert.equal(recs[i]?.prevHash, recs[i - 1]?.hash);
    assert.equal(recs[0]?.type, 'audit');
    assert.equal(recs[1]?.sandboxId, 'sb-000000000001');
    assert.ok(!Number.isNaN(Date.parse(recs[1]?.time ?? '')));
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('audit: editing any one byte of any record is detected and names that record', async () => {
  const { dir, log } = await filled(4);
  await log.close();
  try {
    const path = fileOf(dir);
    const original = readFileSync(path);
    const lines = linesOf(path);
    let offset = 0;
    for (let i = 0; i < lines.length; i++) {
      const len = Buffer.byteLength(lines[i] ?? '');
      // a byte at the start, the middle and the end of the record
      for (const pos of [1, Math.floor(len / 2), len - 2]) {
        const buf = Buffer.from(original);
        const at = offset + pos;
        buf[at] = buf[at] === 0x41 ? 0x42 : 0x41;
        writeFileSync(path, buf);
        const r = verifyChain(dir);
        assert.equal(r.ok, false, `edit at line ${i + 1} byte ${pos} undetected`);
        assert.equal(r.broken?.seq, i + 1, `edit in seq ${i + 1} named ${r.broken?.seq}: ${r.broken?.message}`);
        assert.ok(['edited', 'malformed'].includes(r.broken?.reason ?? ''), r.broken?.reason);
      }
      offset += len + 1;
    }
    writeFileSync(path, original);
    assert.equal(verifyChain(dir).ok, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('audit: deleting a record, swapping two, or replacing one with a re-hashed forgery is detected and named', async () => {
  const { dir, log } = await filled(6);
  await log.close();
  try {
    const path = fileOf(dir);
    const lines = linesOf(path);
    const original = [...lines];

    writeLines(path, lines.filter((_, i) => i !== 3)); // delete seq 4
    let r = verifyChain(dir);
    assert.equal(r.ok, false);
    assert.equal(r.broken?.reason, 'missing');
    assert.equal(r.broken?.seq, 4);
    assert.match(r.broken?.message ?? '', /seq 4 is missing/);

    const swapped = [...original];
    [swapped[2], swapped[3]] = [swapped[3] as string, swapped[2] as string]; // swap seq 3 and 4
    writeLines(path, swapped);
    r = verifyChain(dir);
    assert.equal(r.broken?.reason, 'reordered');
    assert.equal(r.broken?.seq, 3);

    // A forger rewrites seq 3 with a consistent hash: seq 4 no longer chains to it.
    const rec3 = JSON.parse(original[2] as string) as AuditRecord;
    const { hash: _h, ...rest } = rec3;
    const forged = seal({ ...rest, data: { ...rec3.data, argv: ['rm', '-rf', '/'] } });
    writeLines(path, original.map((l, i) => (i === 2 ? recordLine(forged).trimEnd() : l)));
    r = verifyChain(dir);
    assert.equal(r.broken?.reason, 'link');
    assert.equal(r.broken?.seq, 4);

    // Removing records from the end is only visible against the head kilnd knows.
    writeLines(path, original.slice(0, 5));
    assert.equal(verifyChain(dir).ok, true);
    r = verifyChain(dir, { expectHead: log.head });
    assert.equal(r.broken?.reason, 'truncated');
    assert.equal(r.broken?.seq, 6);

    // A torn last line is malformed (unless a write is allowed in flight).
    writeLines(path, original);
    appendFileSync(path, '{"seq":8');
    assert.equal(verifyChain(dir).broken?.reason, 'malformed');
    assert.equal(verifyChain(dir, { allowTornTail: true }).ok, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('audit: rotation keeps one chain across files; a deleted or emptied file is detected', async () => {
  const { dir, log } = await filled(40, { maxFileBytes: 1500 });
  await log.close();
  try {
    const files = listChainFiles(dir);
    assert.ok(files.length >= 4, `expected several files, got ${files.length}`);
    for (const f of files) assert.ok(readFileSync(f.path).length <= 1500 || linesOf(f.path).length === 1);
    const r = verifyChain(dir);
    assert.equal(r.ok, true, JSON.stringify(r.broken));
    assert.equal(r.records, 41);
    // each file's first record chains to the previous file's last
    for (let i = 1; i < files.length; i++) {
      const prevLast = JSON.parse(linesOf(files[i - 1]?.path ?? '').at(-1) ?? '') as AuditRecord;
      const first = JSON.parse(linesOf(files[i]?.path ?? '')[0] ?? '') as AuditRecord;
      assert.equal(first.prevHash, prevLast.hash);
      assert.equal(first.seq, prevLast.seq + 1);
    }
    const victim = files[2];
    assert.ok(victim);
    const saved = readFileSync(victim.path);
    writeFileSync(victim.path, '');
    let v = verifyChain(dir);
    assert.equal(v.broken?.reason, 'missing');
    assert.equal(v.broken?.seq, victim.firstSeq);
    unlinkSync(victim.path);
    v = verifyChain(dir);
    assert.equal(v.broken?.seq, victim.firstSeq);
    writeFileSync(victim.path, saved);
    // removing the oldest file by hand (not by retention) is detected too
    unlinkSync(files[0]?.path ?? '');
    v = verifyChain(dir);
    assert.equal(v.broken?.reason, 'missing');
    assert.equal(v.broken?.seq, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('audit: retention removes old files, records it, and the rest still verifies', async () => {
  const { dir, log } = await filled(30, { maxFileBytes: 1500 });
  await log.close();
  try {
    const before = listChainFiles(dir).length;
    const log2 = await AuditLog.open({ dir, maxFileBytes: 1500, retentionMs: 1 });
    await new Promise((r) => setTimeout(r, 5));
    const removed = await log2.sweep(Date.now() + 60_000);
    await log2.close();
    const after = listChainFiles(dir);
    assert.ok(removed >= 1 && after.length < before, `removed ${removed} of ${before}`);
    const r = verifyChain(dir);
    assert.equal(r.ok, true, JSON.stringify(r.broken));
    assert.ok((r.firstSeq ?? 0) > 1);
    const tail = linesOf(after.at(-1)?.path ?? '').map((l) => JSON.parse(l) as AuditRecord);
    assert.ok(tail.some((x) => x.type === 'audit' && x.data.event === 'pruned'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('audit: a torn last line (crash mid-write) is cut at open, noted, and the chain goes on', async () => {
  const { dir, log } = await filled(3);
  await log.close();
  try {
    appendFileSync(fileOf(dir), '{"seq":5,"partial');
    const log2 = await AuditLog.open({ dir });
    await log2.append({ type: 'api', data: { method: 'GET' } });
    const head = log2.head;
    await log2.close();
    const r = verifyChain(dir, { expectHead: head });
    assert.equal(r.ok, true, JSON.stringify(r.broken));
    const recs = linesOf(fileOf(dir)).map((l) => JSON.parse(l) as AuditRecord);
    const opened = recs.filter((x) => x.data.event === 'opened');
    assert.equal(opened.length, 2);
    assert.equal(opened[1]?.data.recoveredTornBytes, Buffer.byteLength('{"seq":5,"partial'));
    assert.deepEqual(recs.map((x) => x.seq), [1, 2, 3, 4, 5, 6]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('audit: concurrent appends are chained in call order and each resolves once durable', async () => {
  const dir = tmp();
  const log = await AuditLog.open({ dir });
  try {
    const seen: number[] = [];
    log.on('record', (r) => seen.push(r.seq));
    const recs = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append({ type: 'api', data: { i } })));
    assert.deepEqual(recs.map((r) => r.data.i), Array.from({ length: 200 }, (_, i) => i));
    assert.deepEqual(recs.map((r) => r.seq), Array.from({ length: 200 }, (_, i) => i + 2));
    assert.deepEqual(seen, recs.map((r) => r.seq));
    assert.equal(log.head.seq, 201);
    assert.equal(readdirSync(dir).length, 1);
    assert.equal(verifyChain(dir, { expectHead: log.head }).ok, true);
    assert.equal(log.recordsWritten, 201);
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('audit: a failed write stops the log (fail closed)', async () => {
  const dir = tmp();
  const log = await AuditLog.open({ dir });
  try {
    // Make the next write fail: replace the file handle's file with a directory is not
    // possible; close the handle underneath instead.
    await (log as unknown as { fh: { close(): Promise<void> } }).fh.close();
    await assert.rejects(log.append({ type: 'api', data: {} }), { code: 'AUDIT_UNAVAILABLE' });
    assert.equal(log.healthy, false);
    await assert.rejects(log.append({ type: 'api', data: {} }), { code: 'AUDIT_UNAVAILABLE' });
    assert.throws(() => log.assertWritable(), { code: 'AUDIT_UNAVAILABLE' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('audit: verify of a live log checks the prefix durable when it began; what is appended after is the next verify\'s', async () => {
  const { dir, log } = await filled(3);
  try {
    const head = log.head;
    // appended after the head was taken: two records and a line still being written
    await log.append({ type: 'exec', data: { argv: ['later'], exitCode: 0 } });
    await log.append({ type: 'exec', data: { argv: ['later2'], exitCode: 0 } });
    const path = fileOf(dir);
    appendFileSync(path, '{"seq":7,"time":"2026-');
    const r = verifyChain(dir, { expectHead: head, allowTornTail: true });
    assert.equal(r.ok, true, JSON.stringify(r.broken));
    assert.equal(r.records, head.seq, 'exactly the records up to the head');
    assert.deepEqual(r.head, head);
    // without a head (kiln audit verify --dir): everything complete is checked, the partial line is not yet there
    const all = verifyChain(dir, { allowTornTail: true });
    assert.equal(all.ok, true, JSON.stringify(all.broken));
    assert.equal(all.records, head.seq + 2);
    // a record past the first head edited: the next verify (against the newer head) names it
    const lines = linesOf(path);
    writeLines(path, lines.map((l, i) => (i === lines.length - 1 ? l.replace('later2', 'LATER2') : l)));
    assert.equal(verifyChain(dir, { expectHead: head }).ok, true);
    const next = verifyChain(dir, { expectHead: log.head });
    assert.deepEqual([next.broken?.seq, next.broken?.reason], [log.head.seq, 'edited']);
  } finally {
    await log.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('audit: verify reads each file only up to its size when it began (bytes written meanwhile are not read)', async () => {
  const { dir, log } = await filled(2);
  await log.close();
  try {
    const snap = snapshotFiles(dir);
    // after the snapshot the file grows by a line that is no record at all
    appendFileSync(fileOf(dir), 'not a record\n');
    const r = verifySnapshot(snap);
    assert.equal(r.ok, true, JSON.stringify(r.broken));
    assert.equal(r.records, 3);
    // a verify that starts now reads it and names it
    const now = verifyChain(dir);
    assert.deepEqual([now.broken?.seq, now.broken?.reason], [4, 'malformed']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
