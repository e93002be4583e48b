/**
 * `kiln template build`: a template whose root filesystem is a container image's.
 *
 *  1. A builder sandbox (a normal sandbox of the default template, its own dockerd, the caller's
 *     egress policy: none by default) receives the context (or the image archive) as a tar on
 *     an exec's stdin, imports the offline bases the Dockerfile names, and runs `docker build`
 *     (or `docker load`, or `docker pull`); its output streams to the caller line by line.
 *  2. The image's config is read, a container of it created and `docker export`ed: the tar
 *     streams out on the exec's stdout into `tar -x` on the host, and the builder is destroyed.
 *  3. kiln's layer is added (root-tree.ts), the tree written into a scratch disk, and the
 *     template booted once like the default one; before its snapshot the start command runs
 *     and the ready check (a port listening, or a command exiting 0) must pass.
 * Any failure destroys the builder and removes every partial file (the staging dir, the
 * template's temp dir); the previous version of the name stays in place.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ExecHandle } from '@kiln/protocol';
import { KilnError, toKilnError } from '../errors.js';
import type { SandboxManager } from '../sandbox/manager.js';
import type { SpecInput } from '../sandbox/spec.js';
import type { SandboxSpec } from '../sandbox/types.js';
import type { GuestAgent } from '../sandbox/guest-agent.js';
import type { PolicyInput } from '../network/policy.js';
import { KILN_BUSYBOX } from './builder.js';
import { basesScript, BUILT_TAG, buildScript, listening, loadScript, pullScript, receiveScript, StepTracker, templateConfig, type ConfigOverrides, type DockerImageConfig } from './build-script.js';
import type { ImageTemplateConfig, TemplateManifest, TemplateShape } from './manifest.js';
import { addKilnLayer, extractTar, makeRootScratch } from './root-tree.js';
import { loadIntoTemplate, pulledLine, pullError, pullOneScript, saveScript, type PrePulledImage, type PullSpec } from './pre-pull.js';
import type { TemplateService } from './service.js';

export type BuildEvent =
  | { type: 'step'; step: string; detail?: string }
  | { type: 'log'; line: string }
  | { type: 'progress'; step: string; bytes: number };

export interface ImageBuildRequest extends ConfigOverrides {
  name: string;
  tenant: string | null;
  /** dockerfile: `input` is the build context (tar); archive: `input` is an image archive (docker/OCI tar); ref: pull `ref`. */
  mode: 'dockerfile' | 'archive' | 'ref';
  input?: Readable;
  dockerfile?: string;
  ref?: string;
  network?: PolicyInput;
  shape: TemplateShape;
  readyTimeoutMs?: number;
  /** Images pre-pulled into the template's dockerd (template/pre-pull.ts planPulls). */
  pull?: PullSpec[];
  /**
   * A tenant's build: its builder sandbox is the tenant's (own) and counts against its limits
   * (admit, as a create). Absent (the admin's build): unlimited and the admin's, as before.
   */
  owner?: { own: (id: string) => void; admit?: (spec: SandboxSpec) => () => void };
}

/** The label of a builder sandbox: the template's name (the tenant sees its builder in its list by it). */
export const BUILDER_LABEL = 'kiln.template-builder';

/**
 * The create input of a build's builder sandbox: the default shape, the caller's egress policy
 * (none by default; `locked` with pre-pulls, which need the registry: DNS and the registry only).
 */
export const builderInput = (r: Pick<ImageBuildRequest, 'name' | 'network' | 'pull'>): SpecInput => ({
  labels: { [BUILDER_LABEL]: r.name },
  network: r.network ?? { preset: r.pull?.length ? 'locked' : 'none' },
  timeoutMs: 2 * 3600 * 1000,
});

export async function buildFromImage(manager: SandboxManager, templates: TemplateService, r: ImageBuildRequest, emit: (e: BuildEvent) => void): Promise<TemplateManifest> {
  const t0 = performance.now();
  const image = await manager.image();
  // Names are per tenant (a shared template of this name is shadowed, not replaced): only this namespace's versions matter.
  const versions = await templates.store.versions(r.name, r.tenant);
  const other = versions.find((t) => t.source !== 'image');
  if (other) throw new KilnError('TEMPLATE_EXISTS', `a different template is already named ${r.name}`, { status: 409, details: { field: 'name' } });
  const version = Math.max(0, ...versions.map((t) => t.version ?? 1)) + 1;
  const key = `img-${randomBytes(6).toString('hex')}`;
  const staging = join(templates.store.root, `.tmp-stage-${key}-${process.pid}-${randomBytes(3).toString('hex')}`);
  // The pre-pulled images' archive: beside the staging dir, not in it (the staging dir becomes the template's scratch disk).
  const pulledFile = join(templates.store.root, `.tmp-pull-${key}-${process.pid}-${randomBytes(3).toString('hex')}`);
  let builderId: string | null = null;
  let prePulled: PrePulledImage[] = [];
  try {
    emit({ type: 'step', step: 'builder', detail: 'starting a builder sandbox' });
    const pulls = r.pull ?? [];
    const sb = await manager.create(builderInput(r), { tenant: r.tenant, ...r.owner });
    builderId = sb.id;
    emit({ type: 'step', step: 'builder', detail: sb.id });
    const config = await manager.withAgent(sb.id, 'exec', async (agent) => {
      await agent.dockerReady(180_000);
      // First the pre-pulls (a wrong name or a refused repository fails the build before its long part).
      if (pulls.length) prePulled = await prePullInBuilder(agent, pulls, pulledFile, r.shape.diskGiB * 1024 ** 3, emit);
      if (r.mode !== 'ref') {
        emit({ type: 'step', step: 'context', detail: r.mode === 'dockerfile' ? 'uploading the build context' : 'uploading the image archive' });
        await sh(agent, receiveScript(r.mode === 'dockerfile' ? 'dockerfile' : 'archive'), emit, { input: r.input, progress: 'context' });
      }
      if (r.mode === 'dockerfile') {
        const dockerfile = r.dockerfile ?? 'Dockerfile';
        await sh(agent, basesScript(dockerfile), emit);
        emit({ type: 'step', step: 'build', detail: `docker build -f ${dockerfile}` });
        const steps = new StepTracker();
        let tail = '';
        const res = await sh(agent, buildScript(dockerfile), emit, {
          onLine: (l) => {
            tail = (tail + l + '\n').slice(-4000);
            const s = steps.line(l);
            if (s) emit({ type: 'step', step: 'build', detail: `step ${s.step}/${s.of}: ${s.instruction}` });
          },
          check: false,
        });
        if (res !== 0) throw steps.failure(tail);
      } else if (r.mode === 'archive') {
        emit({ type: 'step', step: 'load', detail: 'docker load' });
        await sh(agent, loadScript(), emit);
      } else {
        emit({ type: 'step', step: 'pull', detail: r.ref });
        await sh(agent, pullScript(r.ref ?? ''), emit);
      }
      const json = await capture(agent, `docker image inspect --format '{{json .Config}}' ${BUILT_TAG}`);
      const cfg = templateConfig(JSON.parse(json) as DockerImageConfig, r);
      emit({ type: 'step', step: 'export', detail: "exporting the image's filesystem" });
      const cid = (await capture(agent, `docker create ${BUILT_TAG} /kiln-export`)).trim();
      await mkdir(join(staging, 'root'), { recursive: true, mode: 0o755 });
      const tar = extractTar(join(staging, 'root'));
      // At most the template's disk size comes out of the builder (it is the disk it must fit on).
      const maxBytes = r.shape.diskGiB * 1024 ** 3;
      await Promise.all([sh(agent, `exec docker export ${cid}`, emit, { output: tar.input, progress: 'export', maxBytes }).finally(() => tar.input.end()), tar.done]);
      return cfg;
    });
    emit({ type: 'step', step: 'builder', detail: `destroying ${sb.id}` });
    await manager.destroy(sb.id);
    builderId = null;

    emit({ type: 'step', step: 'root', detail: 'adding the agent, init and docker CLI (kiln layer)' });
    await addKilnLayer(join(staging, 'root'));
    const t = await templates.buildCustom(
      r.shape,
      image,
      {
        key,
        bootTimeoutMs: 600_000,
        makeScratch: (path) => makeRootScratch(staging, path, r.shape.diskGiB),
        beforeSnapshot: async (agent) => {
          if (prePulled.length) {
            emit({ type: 'step', step: 'pre-pull', detail: `loading ${prePulled.length} image(s) into the template's dockerd` });
            await loadIntoTemplate(agent, pulledFile, (line) => emit({ type: 'log', line }));
          }
          await startAndWait(agent, config, r.readyTimeoutMs ?? 120_000, emit);
        },
        manifest: { source: 'image', config, version, ...(prePulled.length ? { prePulled } : {}), ...(r.tenant ? { tenant: r.tenant } : {}) },
      },
      { name: r.name, onProgress: (step, detail) => emit({ type: 'step', step, ...(detail ? { detail } : {}) }) },
    );
    return { ...t, buildMs: Math.round(performance.now() - t0) };
  } catch (err) {
    throw toKilnError(err, 'TEMPLATE_BUILD_FAILED');
  } finally {
    if (builderId) await manager.destroy(builderId).catch(() => undefined);
    await rm(staging, { recursive: true, force: true });
    await rm(pulledFile, { force: true });
  }
}

/** Pulls each image in the builder (a step line per image with its result), then saves them all to `file` on the host. */
async function prePullInBuilder(agent: GuestAgent, pulls: PullSpec[], file: string, maxBytes: number, emit: (e: BuildEvent) => void): Promise<PrePulledImage[]> {
  const done: PrePulledImage[] = [];
  for (const p of pulls) {
    emit({ type: 'step', step: 'pre-pull', detail: p.ref === p.source ? p.ref : `${p.ref} (through the cache: ${p.source})` });
    let out = '';
    const code = await sh(agent, pullOneScript(p), emit, { onLine: (l) => void (out += l + '\n'), check: false });
    if (code !== 0) {
      const reason = pullError(out);
      emit({ type: 'step', step: 'pre-pull', detail: `${p.ref}: failed: ${reason}` });
      throw new KilnError('TEMPLATE_PULL_FAILED', `pre-pull of ${p.ref} failed: ${reason}`, { status: 422, details: { image: p.ref } });
    }
    const img = pulledLine(p, out);
    emit({ type: 'step', step: 'pre-pull', detail: `${p.ref}: pulled ${img.digest ?? img.id}` });
    done.push(img);
  }
  const ws = createWriteStream(file, { mode: 0o600 });
  const closed = new Promise<void>((res, rej) => {
    ws.once('close', () => res());
    ws.once('error', rej);
  });
  closed.catch(() => undefined); // awaited below; also when the save fails first
  await sh(agent, saveScript(pulls), emit, { output: ws, progress: 'pre-pull', maxBytes }).finally(() => ws.end());
  await closed;
  return done;
}

interface ShOptions {
  input?: Readable;
  output?: NodeJS.WritableStream;
  progress?: string;
  onLine?: (line: string) => void;
  /** Kill the command once its stdout passed this many bytes. */
  maxBytes?: number;
  /** Throw on a non-zero exit (default true). */
  check?: boolean;
}

/** Runs a shell script as root in the builder: stdout to `output` (or as log lines), stderr as log lines. */
async function sh(agent: GuestAgent, script: string, emit: (e: BuildEvent) => void, o: ShOptions = {}): Promise<number> {
  let bytes = 0;
  let lastTick = 0;
  const tick = (n: number) => {
    bytes += n;
    if (o.progress && bytes - lastTick >= 8 * 2 ** 20) {
      lastTick = bytes;
      emit({ type: 'progress', step: o.progress, bytes });
    }
  };
  let tail = '';
  const lineSplitter = () => {
    let buf = '';
    return (b: Buffer) => {
      buf += b.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      for (const l of parts) {
        tail = (tail + l + '\n').slice(-2000);
        o.onLine?.(l);
        emit({ type: 'log', line: l });
      }
    };
  };
  const out = lineSplitter();
  let tooBig = false;
  const handle: ExecHandle = agent.exec(
    { argv: ['/bin/sh', '-c', script], user: 'root', stdin: o.input !== undefined },
    {
      onStdout: (b) => {
        if (!o.output) return out(b);
        tick(b.length);
        if (o.maxBytes !== undefined && bytes > o.maxBytes) {
          tooBig = true;
          void handle.signal('SIGKILL').catch(() => undefined);
          return;
        }
        const w = o.output;
        return w.write(b) ? undefined : new Promise<void>((res) => w.once('drain', () => res()));
      },
      onStderr: lineSplitter(),
    },
  );
  if (o.input) {
    for await (const chunk of o.input) {
      tick((chunk as Buffer).length);
      await handle.writeStdin(chunk as Buffer);
    }
    handle.endStdin();
  }
  const res = await handle.result;
  if (o.progress) emit({ type: 'progress', step: o.progress, bytes });
  if (tooBig) throw new KilnError('TEMPLATE_BUILD_FAILED', `the image's filesystem is larger than the template's disk (${o.maxBytes} bytes); give --disk more`, { status: 422 });
  const code = res.exitCode ?? 128;
  if (code !== 0 && o.check !== false) throw new KilnError('TEMPLATE_BUILD_FAILED', `${script.split('\n')[0]?.slice(0, 120)} failed (exit ${code}): ${tail.trim().split('\n').slice(-3).join(' | ')}`, { status: 422 });
  return code;
}

async function capture(agent: GuestAgent, script: string): Promise<string> {
  let out = '';
  let err = '';
  const res = await agent.exec({ argv: ['/bin/sh', '-c', script], user: 'root' }, { onStdout: (b) => void (out += b.toString()), onStderr: (b) => void (err += b.toString()) }).result;
  if (res.exitCode !== 0) throw new KilnError('TEMPLATE_BUILD_FAILED', `${script} failed (exit ${res.exitCode}): ${err.trim().slice(-500)}`, { status: 422 });
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the template's start command and waits for its ready check (template boot, before the snapshot). */
async function startAndWait(agent: GuestAgent, c: ImageTemplateConfig, timeoutMs: number, emit: (e: BuildEvent) => void): Promise<void> {
  const base = { env: c.env, ...(c.workdir ? { cwd: c.workdir } : {}), ...(c.user ? { user: c.user } : {}) };
  let pid: number | null = null;
  if (c.startCmd.length > 0) {
    emit({ type: 'step', step: 'start', detail: c.startCmd.join(' ') });
    pid = (await agent.proc('proc.start', { argv: c.startCmd, ...base, tag: 'kiln-start' })).pid;
  }
  if (c.readyPort === 0 && c.readyCmd.length === 0) return;
  emit({ type: 'step', step: 'ready', detail: c.readyPort ? `port ${c.readyPort} listening` : `\`${c.readyCmd.join(' ')}\` exits 0` });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (pid !== null) {
      const p = await agent.proc('proc.get', { pid });
      if (p.state === 'exited') {
        const out = await agent.proc('proc.read', { pid, offset: 0 }).catch(() => null);
        const text = out ? Buffer.concat(out.chunks.map((ch) => Buffer.from(ch.data, 'base64'))).toString().slice(-1000) : '';
        throw new KilnError('TEMPLATE_NOT_READY', `the start command exited (code ${p.exitCode}) before it was ready${text ? `: ${text.trim()}` : ''}`, { status: 422 });
      }
    }
    if (c.readyPort) {
      let text = '';
      await agent.exec({ argv: [KILN_BUSYBOX, 'cat', '/proc/net/tcp', '/proc/net/tcp6'] }, { onStdout: (b) => void (text += b.toString()) }).result;
      if (listening(text, c.readyPort)) return;
    } else {
      const res = await agent.exec({ argv: c.readyCmd, ...base, timeoutMs: 30_000 }).result.catch(() => null);
      if (res?.exitCode === 0) return;
    }
    if (Date.now() > deadline) throw new KilnError('TEMPLATE_NOT_READY', `the ready check (${c.readyPort ? `port ${c.readyPort}` : c.readyCmd.join(' ')}) did not pass within ${timeoutMs} ms`, { status: 422 });
    await sleep(500);
  }
}
