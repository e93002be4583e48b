/**
 * Persistent volumes (docs/volumes.md): `kiln.volumes.create('data', {sizeBytes})`, attach with
 * `kiln.sandboxes.create({volumes: [{name: 'data', path: '/data'}]})`. Copying in and out runs
 * through a short-lived helper sandbox holding the volume (kilnd never mounts a volume on the
 * host: a guest wrote it), so it takes a create's time and the volume must not be held by a writer.
 */
import type { Data } from './wire.js';
import type { Sandbox } from './sandbox.js';
import type { Transport } from './transport.js';
import { call, enc } from './wire.js';

export interface VolumeInfo {
  name: string;
  tenant: string | null;
  sizeBytes: number;
  createdAt: string;
  attachedTo: Array<{ sandboxId: string; readOnly: boolean; path: string }>;
}

/** Where the helper sandbox of a copy mounts the volume. */
const HELPER_MOUNT = '/mnt/kiln-volume';

function inVolume(path: string): string {
  const clean = path.split('/').filter((c) => c !== '' && c !== '.');
  if (clean.includes('..')) throw new Error(`volume path ${path} may not contain ..`);
  return [HELPER_MOUNT, ...clean].join('/');
}

export class Volumes {
  constructor(
    private readonly t: Transport,
    /** kiln.sandboxes (its create is all a copy needs). */
    private readonly sandboxes: { create(opts: { volumes: Array<{ name: string; path: string; readOnly?: boolean }>; timeoutMs: number }): Promise<Sandbox> },
  ) {}

  create(name: string, opts: { sizeBytes: number }): Promise<VolumeInfo> {
    return call(this.t, 'POST', '/v1/volumes', { name, sizeBytes: opts.sizeBytes });
  }
  async list(): Promise<VolumeInfo[]> {
    return (await call<{ volumes: VolumeInfo[] }>(this.t, 'GET', '/v1/volumes')).volumes;
  }
  /** What the caller's volumes take (their sizes) and its quota (the tenant's maxVolumeGiB limit), in bytes. */
  async usage(): Promise<{ usedBytes: number; quotaBytes: number }> {
    const r = await call<{ usedBytes: number; quotaBytes: number }>(this.t, 'GET', '/v1/volumes');
    return { usedBytes: r.usedBytes, quotaBytes: r.quotaBytes };
  }
  get(name: string): Promise<VolumeInfo> {
    return call(this.t, 'GET', `/v1/volumes/${enc(name)}`);
  }
  /** Removes a volume (refused with VOLUME_IN_USE while a sandbox holds it). */
  async remove(name: string): Promise<void> {
    await call(this.t, 'DELETE', `/v1/volumes/${enc(name)}`);
  }

  /** Extracts a tar stream under `path` in the volume (owned by the guest's `user` afterwards). */
  async uploadDir(name: string, path: string, tar: Data): Promise<void> {
    const dir = inVolume(path);
    const sb = await this.sandboxes.create({ volumes: [{ name, path: HELPER_MOUNT }], timeoutMs: 30 * 60_000 });
    try {
      await sb.files.uploadDir(dir, tar);
      const r = await sb.exec(['chown', '-R', '1000:1000', '--', dir]);
      if (r.exitCode !== 0) throw new Error(`chown in the volume failed: ${r.stderr}`);
      await sb.exec(['sync']);
    } finally {
      await sb.kill();
    }
  }

  /** A tar stream of `path` in the volume (attached read-only to a helper sandbox, gone once the stream ends). */
  async downloadDir(name: string, path: string): Promise<AsyncIterable<Uint8Array>> {
    const sb = await this.sandboxes.create({ volumes: [{ name, path: HELPER_MOUNT, readOnly: true }], timeoutMs: 30 * 60_000 });
    let body: AsyncIterable<Uint8Array>;
    try {
      body = await sb.files.downloadDir(inVolume(path));
    } catch (err) {
      await sb.kill();
      throw err;
    }
    return (async function* () {
      try {
        yield* body;
      } finally {
        await sb.kill();
      }
    })();
  }
}
