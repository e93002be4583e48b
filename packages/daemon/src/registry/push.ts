/**
 * Pushes an image archive to the private registry on loopback: a docker-archive (`docker save`,
 * `manifest.json` + layer tars; layers are gzipped here, as `docker push` does) or an OCI
 * image layout tar (`index.json` + blobs, pushed as they are). The repository is already
 * authorized by the caller (routes/images.ts names it in the caller's namespace).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Transform, type Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { KilnError } from '../errors.js';
import { readMember, tarIndex, type TarMember } from './tar-index.js';

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER_GZ = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

interface Http {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function http(port: number, method: string, path: string, body?: { stream: () => Readable; size: number } | Buffer, headers: Record<string, string> = {}): Promise<Http> {
  return new Promise((resolve, reject) => {
    const len = body === undefined ? 0 : Buffer.isBuffer(body) ? body.length : body.size;
    const r = request({ host: '127.0.0.1', port, method, path, headers: { ...headers, 'content-length': String(len) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8').slice(0, 4000) }));
      res.on('error', reject);
    });
    r.on('error', reject);
    if (body === undefined) r.end();
    else if (Buffer.isBuffer(body)) r.end(body);
    else body.stream().pipe(r);
  });
}

const fail = (what: string, r: Http): KilnError => new KilnError('REGISTRY_PUSH_FAILED', `${what}: the registry answered ${r.status} ${r.body.trim()}`, { status: 502 });

async function uploadBlob(port: number, repo: string, digest: string, size: number, stream: () => Readable): Promise<void> {
  const head = await http(port, 'HEAD', `/v2/${repo}/blobs/${digest}`);
  if (head.status === 200) return;
  const start = await http(port, 'POST', `/v2/${repo}/blobs/uploads/`);
  if (start.status !== 202) throw fail(`starting the upload of ${digest}`, start);
  const loc = new URL(String(start.headers.location ?? ''), `http://127.0.0.1:${port}`);
  loc.searchParams.set('digest', digest);
  const put = await http(port, 'PUT', `${loc.pathname}${loc.search}`, { stream, size }, { 'content-type': 'application/octet-stream' });
  if (put.status !== 201) throw fail(`uploading ${digest}`, put);
}

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Gzips a member into `out`, returning its digest and size. */
async function gzipMember(archive: string, m: TarMember, out: string): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  const src = m.size === 0 ? createReadStream('/dev/null') : createReadStream(archive, { start: m.offset, end: m.offset + m.size - 1 });
  await pipeline(src, createGzip({ level: 6 }), tap, createWriteStream(out));
  return { digest: `sha256:${hash.digest('hex')}`, size: statSync(out).size };
}

export interface PushResult {
  repository: string;
  tag: string;
  digest: string;
  layers: number;
  bytes: number;
}

export async function pushArchive(port: number, archive: string, repo: string, tag: string, tmpPrefix: string): Promise<PushResult> {
  const idx = tarIndex(archive);
  const get = (name: string): TarMember => {
    const m = idx.get(name.replace(/^(\.\/)+/, ''));
    if (!m) throw new KilnError('INVALID_ARGUMENT', `the archive has no ${name}`, { status: 400, details: { field: 'archive' } });
    return m;
  };
  let manifest: Buffer;
  let mediaType: string;
  let layers = 0;
  let bytes = 0;
  const dockerManifest = idx.get('manifest.json');
  if (dockerManifest) {
    const list = JSON.parse(readMember(archive, dockerManifest).toString('utf8')) as Array<{ Config: string; Layers: string[] }>;
    const first = list[0];
    if (!first) throw new KilnError('INVALID_ARGUMENT', 'the archive holds no image', { status: 400 });
    const config = readMember(archive, get(first.Config));
    const out = [];
    for (const [i, name] of first.Layers.entries()) {
      const tmp = `${tmpPrefix}.layer${i}`;
      try {
        const { digest, size } = await gzipMember(archive, get(name), tmp);
        await uploadBlob(port, repo, digest, size, () => createReadStream(tmp));
        out.push({ mediaType: DOCKER_LAYER_GZ, size, digest });
        bytes += size;
      } finally {
        rmSync(tmp, { force: true });
      }
    }
    await uploadBlob(port, repo, sha(config), config.length, () => createReadStream(archive, { start: get(first.Config).offset, end: get(first.Config).offset + config.length - 1 }));
    layers = out.length;
    mediaType = DOCKER_MANIFEST;
    manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, config: { mediaType: DOCKER_CONFIG, size: config.length, digest: sha(config) }, layers: out }));
  } else {
    // OCI image layout: index.json → the first manifest → its config and layers, pushed as they are.
    const index = JSON.parse(readMember(archive, get('index.json')).toString('utf8')) as { manifests?: Array<{ digest: string; mediaType: string }> };
    const desc = index.manifests?.[0];
    if (!desc) throw new KilnError('INVALID_ARGUMENT', 'the archive is neither a docker-archive (manifest.json) nor an OCI layout with a manifest', { status: 400 });
    const blob = (d: string) => get(`blobs/${d.replace(':', '/')}`);
    manifest = readMember(archive, blob(desc.digest));
    mediaType = desc.mediaType;
    const m = JSON.parse(manifest.toString('utf8')) as { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> };
    for (const d of [...m.layers, m.config]) {
      const member = blob(d.digest);
      await uploadBlob(port, repo, d.digest, member.size, () => createReadStream(archive, { start: member.offset, end: member.offset + member.size - 1 }));
      bytes += member.size;
    }
    layers = m.layers.length;
  }
  const put = await http(port, 'PUT', `/v2/${repo}/manifests/${tag}`, manifest, { 'content-type': mediaType });
  if (put.status !== 201) throw fail(`putting the manifest of ${repo}:${tag}`, put);
  return { repository: repo, tag, digest: sha(manifest), layers, bytes };
}
