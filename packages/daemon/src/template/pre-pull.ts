/**
 * Images a template pre-pulls (`kiln template build … --pull IMAGE`), so that `docker run IMAGE`
 * in its sandboxes starts without any registry access. The builder sandbox (the building
 * tenant's own: the registry's per-tenant rules hold exactly as in any sandbox) pulls them from
 * the private registry, `docker save`s them to a file on the host, and the template VM
 * `docker load`s that file before its start command and snapshot: the images sit in the
 * template's dockerd (`/scratch/docker`, on the scratch disk every sandbox restores from).
 * What may be pulled: `registry.kiln.internal/…`, or, when kilnd's registry is a pull-through
 * cache, a reference of the cached registry (pulled through the cache, tagged with both names).
 */
import { createReadStream } from 'node:fs';
import { KilnError } from '../errors.js';
import type { GuestAgent } from '../sandbox/guest-agent.js';
import { REGISTRY_HOST } from '../registry/tls.js';
import { shellQuote as q } from './build-script.js';

/** One image to pre-pull: `ref` is its name in the template, `source` what the builder pulls. */
export interface PullSpec {
  ref: string;
  source: string;
}

/** A pre-pulled image as the template's manifest records it. */
export interface PrePulledImage {
  image: string;
  /** The registry's manifest digest (`sha256:…`), or null when the registry gave none. */
  digest: string | null;
  /** The image id (its config's digest) in the template's dockerd. */
  id: string;
}

export const MAX_PULLS = 32;
const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
const REF_RE = /^[a-z0-9][A-Za-z0-9._/:-]{0,254}$/;

const invalid = (message: string) => new KilnError('INVALID_ARGUMENT', message, { status: 400, details: { field: 'pull' } });

/** A reference split as docker reads it: registry host, repository path, tag. */
export function parseRef(ref: string): { domain: string; path: string; tag: string } {
  if (ref.includes('@')) throw invalid(`--pull ${ref}: a reference by digest is not kept by docker save/load; name a tag`);
  if (!REF_RE.test(ref) || ref.includes('//') || ref.includes('..')) throw invalid(`--pull ${JSON.stringify(ref)} is not an image reference`);
  const slash = ref.indexOf('/');
  const first = slash < 0 ? '' : ref.slice(0, slash);
  const hasDomain = first.includes('.') || first.includes(':') || first === 'localhost';
  const domain = hasDomain ? first : 'docker.io';
  let rest = hasDomain ? ref.slice(slash + 1) : ref;
  const colon = rest.lastIndexOf(':');
  let tag = 'latest';
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (!rest || !tag || rest.endsWith('/') || rest.startsWith('/')) throw invalid(`--pull ${JSON.stringify(ref)} is not an image reference`);
  const path = domain === 'docker.io' && !rest.includes('/') ? `library/${rest}` : rest;
  if (/[A-Z]/.test(domain + path)) throw invalid(`--pull ${JSON.stringify(ref)}: repository names are lower case`);
  return { domain, path, tag };
}

/**
 * What the builder pulls for each requested image. `remoteUrl`: the upstream of kilnd's
 * pull-through cache (KILN_REGISTRY_REMOTE_URL), null when there is none.
 */
export function planPulls(refs: string[], remoteUrl: string | null): PullSpec[] {
  if (refs.length > MAX_PULLS) throw invalid(`at most ${MAX_PULLS} images can be pre-pulled`);
  let remoteHost: string | null = null;
  if (remoteUrl) {
    try {
      remoteHost = new URL(remoteUrl).host;
    } catch {
      remoteHost = null;
    }
  }
  const sameRegistry = (domain: string) => remoteHost !== null && (domain === remoteHost || (DOCKER_HUB.has(domain) && DOCKER_HUB.has(remoteHost)));
  const seen = new Set<string>();
  const plan: PullSpec[] = [];
  for (const ref of refs) {
    const { domain, path, tag } = parseRef(ref);
    const named = `${ref.slice(0, ref.length - (ref.endsWith(`:${tag}`) ? tag.length + 1 : 0))}:${tag}`;
    if (seen.has(named)) continue;
    seen.add(named);
    if (domain === REGISTRY_HOST) plan.push({ ref: named, source: named });
    else if (sameRegistry(domain)) plan.push({ ref: named, source: `${REGISTRY_HOST}/${path}:${tag}` });
    else {
      throw invalid(
        remoteHost
          ? `--pull ${ref}: only images of the private registry (${REGISTRY_HOST}/…) or of ${remoteHost} (through kilnd's pull-through cache) can be pre-pulled`
          : `--pull ${ref}: only images of the private registry (${REGISTRY_HOST}/…) can be pre-pulled; public images need kilnd's pull-through cache (KILN_REGISTRY_REMOTE_URL)`,
      );
    }
  }
  return plan;
}


/**
 * Pulls one image in the builder (tried again while the guest's dockerd may still resolve with
 * the template's resolv.conf, or before the registry's CA landed: both pass within seconds of a
 * create), and tags it with its name in the template when that differs from what was pulled.
 * Exit 0 and one last line `kiln-pulled <id> <digest>`, or non-zero with the registry's error.
 */
export function pullOneScript(p: PullSpec): string {
  return [
    `i=0; while :; do out=$(docker pull ${q(p.source)} 2>&1); rc=$?; echo "$out"; [ $rc = 0 ] && break; i=$((i+1))`,
    `  case "$out" in *"lookup ${REGISTRY_HOST}"*|*x509*|*"certificate signed by unknown"*) [ $i -lt 8 ] && { sleep 2; continue; };; esac; exit $rc; done`,
    p.ref === p.source ? '' : `docker tag ${q(p.source)} ${q(p.ref)} || exit 1`,
    `echo "kiln-pulled $(docker image inspect --format '{{.Id}} {{range .RepoDigests}}{{.}} {{end}}' ${q(p.source)})"`,
  ].filter(Boolean).join('\n');
}

/** The id and the registry digest from pullOneScript's last line. */
export function pulledLine(p: PullSpec, output: string): PrePulledImage {
  const line = output.split('\n').reverse().find((l) => l.startsWith('kiln-pulled ')) ?? '';
  const [, id = '', ...digests] = line.trim().split(/\s+/);
  const repo = p.source.slice(0, p.source.lastIndexOf(':'));
  const d = digests.find((x) => x.startsWith(`${repo}@`)) ?? digests[0];
  return { image: p.ref, digest: d ? (d.split('@')[1] ?? null) : null, id };
}

/** The registry's own words from a failed `docker pull` (its last lines that say something). */
export function pullError(output: string): string {
  const lines = output.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('kiln-pulled'));
  const errs = lines.filter((l) => /^Error|denied|not found|unknown|unauthorized|refused|no such host|x509/i.test(l));
  return (errs.length ? errs : lines).slice(-2).join(' | ').slice(0, 1000) || 'docker pull failed';
}

/** Every pre-pulled image (both names of a cached public one) into one `docker save` archive on stdout. */
export function saveScript(plan: PullSpec[]): string {
  const names = [...new Set(plan.flatMap((p) => [p.ref, p.source]))];
  return `exec docker save ${names.map(q).join(' ')}`;
}

/** The template VM's dockerd loads the archive (stdin from the host file) before its start command and snapshot. */
export async function loadIntoTemplate(agent: GuestAgent, archive: string, onLine: (line: string) => void): Promise<void> {
  let out = '';
  const handle = agent.exec(
    { argv: ['/opt/kiln/bin/docker', 'load'], user: 'root', stdin: true },
    { onStdout: (b) => void (out += b.toString()), onStderr: (b) => void (out += b.toString()) },
  );
  for await (const chunk of createReadStream(archive)) await handle.writeStdin(chunk as Buffer);
  handle.endStdin();
  const res = await handle.result;
  for (const l of out.split('\n')) if (l.trim()) onLine(l);
  if (res.exitCode !== 0) throw new KilnError('TEMPLATE_BUILD_FAILED', `docker load of the pre-pulled images failed in the template (exit ${res.exitCode}): ${out.trim().slice(-500)}`, { status: 500 });
}
