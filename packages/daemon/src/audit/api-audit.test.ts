/**
 * The API's audit over fakes (no VM): a real kilnd API on a unix socket, a real audit log, a
 * fake driver and agent. Proves which calls make which records, in which order, with which
 * fields and caller, and that they are durable before the call returns.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pino } from 'pino';
import { buildApi } from '../api/server.js';
import { Observability } from '../observability.js';
import { DEFAULT_OBSERVABILITY_CONFIG } from '../observability-config.js';
import { SandboxManager } from '../sandbox/manager.js';
import type { GuestAgent } from '../sandbox/guest-agent.js';
import { Store } from '../store/store.js';
import { FakeDriver, fakeAgent, fakeScratchDisk } from '../testing/fakes.js';
import { isAudited } from './api-hook.js';
import { queryAudit } from './query.js';
import type { AuditRecord } from './record.js';
import { verifyChain } from './verify.js';

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function call(socketPath: string, method: string, path: string, body?: string | Buffer, type = 'application/json'): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: body === undefined ? {} : { 'content-type': type, 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function testAgent(): GuestAgent {
  const base = fakeAgent() as unknown as Record<string, unknown>;
  base.exec = (args: { argv?: string[] }, cb: { onStdout(b: Buffer): void }) => {
    const out = Buffer.from(`${(args.argv ?? []).join(' ')}\n`);
    return {
      result: (async () => {
        cb.onStdout(out);
        return { exitCode: args.argv?.[0] === 'false' ? 1 : 0, signal: null, timedOut: false, durationMs: 3 };
      })(),
      writeStdin: async () => undefined,
      endStdin: () => undefined,
      signal: async () => undefined,
    };
  };
  base.writeFile = async (_path: string, src: Readable) => {
    const chunks: Buffer[] = [];
    for await (const c of src) chunks.push(c as Buffer);
    const b = Buffer.concat(chunks);
    return { bytes: b.length, sha256: createHash('sha256').update(b).digest('hex') };
  };
  return base as unknown as GuestAgent;
}

test('API audit: a scripted session leaves exactly its records, in order, with caller, fields and request ids', async () => {
  const stateDir = await mkdtemp(join(tmpdir(), 'kiln-audit-api-'));
  const logger = pino({ level: 'silent' });
  const store = new Store(join(stateDir, 'kiln.db'));
  const obs = await Observability.start({ stateDir, ...DEFAULT_OBSERVABILITY_CONFIG, auditMetadataReads: true, statsIntervalMs: 60_000 }, logger);
  const manager = new SandboxManager({
    stateDir,
    store,
    driver: new FakeDriver(),
    logger,
    resolveImage: async () => ({ hash: 'h1', kernel: '/k', initrd: '/i', rootfs: '/r', cmdline: '' }),
    createScratchDisk: fakeScratchDisk,
    connectAgent: async () => testAgent(),
    observer: obs.observer,
  });
  await manager.init();
  obs.bind(manager);
  const app = await buildApi({ manager, logger, observe: obs.api, info: () => ({ version: 't', driver: {}, image: null, stateDir }) });
  const sock = join(stateDir, 'api.sock');
  await app.listen({ path: sock });
  try {
    const created = await call(sock, 'POST', '/v1/sandboxes', '{}');
    assert.equal(created.status, 201, created.body);
    const id = (JSON.parse(created.body) as { id: string }).id;
    const createReq = created.headers['x-request-id'];
    assert.match(String(createReq), /^req-[0-9a-f]{12}$/);
    for (const argv of [['echo', 'one'], ['false'], ['uname', '-a']]) {
      const r = await call(sock, 'POST', `/v1/sandboxes/${id}/exec`, JSON.stringify({ argv, cwd: '/tmp', env: { SECRET: 'x' } }));
      assert.equal(r.status, 200);
      assert.match(r.body, /"type":"exit"/);
    }
    const payload = Buffer.from('hello audit\n');
    const up = await call(sock, 'PUT', `/v1/sandboxes/${id}/files?path=/root/a.txt`, payload, 'application/octet-stream');
    assert.equal(up.status, 200, up.body);
    // metadata reads are recorded too (every API call), and so is a refused call
    assert.equal((await call(sock, 'GET', `/v1/sandboxes/${id}`)).status, 200);
    assert.equal((await call(sock, 'POST', `/v1/sandboxes/${id}/exec`, JSON.stringify({ argv: [] }))).status, 400);
    const del = await call(sock, 'DELETE', `/v1/sandboxes/${id}`);
    assert.equal(del.status, 204);

    // Every record is durable when the call has returned: read the files, not memory.
    const recs = queryAudit(obs.audit.dir, { sandboxId: id }).records;
    const shape = recs.map((r) => (r.type === 'lifecycle' ? `lifecycle:${String(r.data.from)}>${String(r.data.to)}` : r.type === 'api' ? `api:${String(r.data.method)} ${String(r.data.route)} ${String(r.data.status)}` : `${r.type}`));
    assert.deepEqual(shape, [
      'lifecycle:null>creating',
      'lifecycle:creating>running',
      'api:POST /v1/sandboxes 201',
      'api:POST /v1/sandboxes/:id/exec 200',
      'exec',
      'api:POST /v1/sandboxes/:id/exec 200',
      'exec',
      'api:POST /v1/sandboxes/:id/exec 200',
      'exec',
      'file',
      'api:PUT /v1/sandboxes/:id/files 200',
      'api:GET /v1/sandboxes/:id 200',
      'api:POST /v1/sandboxes/:id/exec 400',
      'lifecycle:running>stopping',
      'lifecycle:stopping>destroyed',
      'api:DELETE /v1/sandboxes/:id 204',
    ]);
    const execs = recs.filter((r) => r.type === 'exec');
    assert.deepEqual(execs.map((r) => r.data.argv), [['echo', 'one'], ['false'], ['uname', '-a']]);
    assert.deepEqual(execs.map((r) => r.data.exitCode), [0, 1, 0]);
    assert.deepEqual(execs.map((r) => r.data.stdoutBytes), [9, 6, 9]);
    for (const e of execs) {
      assert.equal(e.data.cwd, '/tmp');
      assert.deepEqual(e.data.envKeys, ['SECRET'], 'env names only, never values');
      assert.equal(e.data.durationMs, 3);
    }
    const file = recs.find((r) => r.type === 'file') as AuditRecord;
    assert.deepEqual(file.data, { op: 'upload', path: '/root/a.txt', bytes: payload.length, sha256: createHash('sha256').update(payload).digest('hex') });
    const bad = recs.find((r) => r.data.status === 400) as AuditRecord;
    assert.equal(bad.data.errorCode, 'INVALID_ARGUMENT');
    // caller identity: this process, through SO_PEERCRED
    for (const r of recs.filter((x) => x.type !== 'lifecycle' || x.requestId)) {
      assert.deepEqual(r.actor, { kind: 'unix', uid: process.getuid?.() ?? null, gid: process.getgid?.() ?? null, pid: process.pid }, `${r.type} ${r.seq}`);
    }
    // lifecycle records carry the request that caused them
    assert.equal(recs[0]?.requestId, createReq);
    assert.equal(recs[2]?.requestId, createReq);
    assert.equal(recs[3]?.requestId, recs[4]?.requestId, 'an exec and its API call share the request id');
    const v = verifyChain(obs.audit.dir, { expectHead: obs.audit.head });
    assert.equal(v.ok, true, JSON.stringify(v.broken));

    // through the API too
    const viaApi = JSON.parse((await call(sock, 'GET', `/v1/audit?sandbox=${id}`)).body) as { records: AuditRecord[] };
    assert.deepEqual(viaApi.records.map((r) => r.seq), recs.map((r) => r.seq));
    const verified = JSON.parse((await call(sock, 'GET', '/v1/audit/verify')).body) as { ok: boolean; records: number };
    assert.equal(verified.ok, true);
    const metrics = await call(sock, 'GET', '/metrics');
    assert.match(metrics.body, /^kiln_audit_records_total \d+/m);
    assert.match(metrics.body, /^kiln_sandbox_creates_total\{outcome="running"\} 1/m);
    assert.match(metrics.body, /^kiln_sandbox_destroys_total 1/m);
    assert.match(metrics.body, /^kiln_sandbox_create_duration_seconds_count 1/m);

    // fail closed: once the log cannot be written, calls are refused before they act
    await (obs.audit as unknown as { fh: { close(): Promise<void> } }).fh.close();
    const refusedFirst = await call(sock, 'POST', '/v1/sandboxes', '{}');
    assert.equal(refusedFirst.status, 503, `${refusedFirst.body}`);
    const refused = await call(sock, 'POST', '/v1/sandboxes', '{}');
    assert.equal(refused.status, 503);
    assert.match(refused.body, /AUDIT_UNAVAILABLE/);
    assert.equal(manager.list().filter((s) => s.state !== 'failed').length <= 1, true);
  } finally {
    await app.close();
    await manager.shutdown({ destroyAll: true });
    await obs.close().catch(() => undefined);
    store.close();
    await rm(stateDir, { recursive: true, force: true });
  }
});

test('API audit: every call is recorded by default; the opt-out leaves only kilnd metadata reads out', () => {
  for (const [method, route] of [['GET', '/v1/health'], ['GET', '/v1/sandboxes/:id'], ['GET', '/v1/audit/verify'], ['GET', '/metrics'], ['POST', '/v1/sandboxes'], ['GET', '/v1/sandboxes/:id/files']] as const) {
    assert.equal(isAudited(method, route, {}), true, `${method} ${route} by default`);
    assert.equal(isAudited(method, route, { recordMetadataReads: true }), true);
  }
  assert.equal(isAudited('GET', '/v1/sandboxes/:id', { recordMetadataReads: false }), false);
  assert.equal(isAudited('GET', '/v1/audit/verify', { recordMetadataReads: false }), false);
  assert.equal(isAudited('GET', '/v1/sandboxes/:id/files', { recordMetadataReads: false }), true, 'a read from a guest is always recorded');
  assert.equal(isAudited('DELETE', '/v1/sandboxes/:id', { recordMetadataReads: false }), true);
  assert.equal(DEFAULT_OBSERVABILITY_CONFIG.auditMetadataReads, process.env.KILN_AUDIT_METADATA_READS !== '0');
});
