/**
 * What runs inside the builder sandbox (a normal sandbox of the default template, with its own
 * dockerd) to turn a Dockerfile or an image archive into an image, and how its output is read:
 * the Dockerfile step in progress, the image's config (ENV, WORKDIR, USER, ENTRYPOINT, CMD,
 * EXPOSE). Pure functions: template/from-image.ts runs them.
 */
import { KilnError } from '../errors.js';
import type { ImageTemplateConfig } from './manifest.js';

/** Where the builder keeps the context and the archive (its scratch disk, not the overlay). */
export const BUILD_DIR = '/scratch/kiln-build';
/** The tag the built (or loaded, or pulled) image gets in the builder's dockerd. */
export const BUILT_TAG = 'kiln-build:latest';

/** `s` as one single-quoted sh word. */
export const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const q = shellQuote;

/** Unpacks the context (a tar on stdin) into BUILD_DIR/ctx, or stores an image archive as BUILD_DIR/image.tar. */
export function receiveScript(mode: 'dockerfile' | 'archive'): string {
  return `set -e; rm -rf ${BUILD_DIR}; mkdir -p ${BUILD_DIR}/ctx; ${mode === 'dockerfile' ? `tar -x -C ${BUILD_DIR}/ctx` : `cat > ${BUILD_DIR}/image.tar`}`;
}

/** Matches a FROM of `image` (any tag), also with --platform-like flags or in a multi-stage file. */
const fromRe = (image: string) => `'^[[:space:]]*FROM[[:space:]]+(--[^[:space:]]+[[:space:]]+)*${image}([[:space:]:@]|$)'`;

/**
 * The offline bases, imported into the builder's dockerd only when the Dockerfile names them:
 * kiln/busybox (kiln's static busybox with every applet linked, a few KiB of files) and
 * kiln/base (the guest's own root filesystem, kiln's files left out).
 */
export function basesScript(dockerfile: string): string {
  const df = `${BUILD_DIR}/ctx/${dockerfile}`;
  return [
    `set -e; DF=${q(df)}`,
    `[ -f "$DF" ] || { echo "kiln: no Dockerfile ${dockerfile.replace(/[^A-Za-z0-9._/-]/g, '?')} in the build context" >&2; exit 3; }`,
    `if grep -qiE ${fromRe('kiln/busybox')} "$DF"; then`,
    `  echo "kiln: importing kiln/busybox"; T=${BUILD_DIR}/bb; mkdir -p $T/bin $T/etc $T/tmp $T/root $T/proc; cp /opt/kiln/bin/busybox $T/bin/busybox`,
    // One process links every applet (a shell loop of ~270 \`ln -s\` took a minute under TCG).
    `  mount -t proc proc $T/proc && chroot $T /bin/busybox --install -s /bin; rc=$?; umount $T/proc; [ $rc = 0 ]`,
    `  echo 'root:x:0:0:root:/root:/bin/sh' > $T/etc/passwd; echo 'root:x:0:' > $T/etc/group; chmod 1777 $T/tmp`,
    `  tar -C $T -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' -c 'CMD ["/bin/sh"]' - kiln/busybox:latest >/dev/null; rm -rf $T`,
    `fi`,
    `if grep -qiE ${fromRe('kiln/base')} "$DF"; then`,
    `  echo "kiln: importing kiln/base (the guest's root filesystem)"`,
    `  tar -C /lower --exclude=./opt/kiln --exclude=./usr/lib/modules -c . | docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' -c 'CMD ["/bin/bash"]' - kiln/base:latest >/dev/null`,
    `fi`,
  ].join('\n');
}

/** The classic builder (DOCKER_BUILDKIT=0): its "Step N/M : INSTRUCTION" lines name the failing step. */
export function buildScript(dockerfile: string): string {
  return `cd ${BUILD_DIR}/ctx && DOCKER_BUILDKIT=0 exec docker build --rm --force-rm -t ${BUILT_TAG} -f ${q(`${BUILD_DIR}/ctx/${dockerfile}`)} .`;
}

export function loadScript(): string {
  return [
    `set -e; out=$(docker load -i ${BUILD_DIR}/image.tar); echo "$out"; rm -f ${BUILD_DIR}/image.tar`,
    `ref=$(echo "$out" | sed -n 's/^Loaded image: //p; s/^Loaded image ID: //p' | tail -n 1)`,
    `[ -n "$ref" ] || { echo "kiln: the archive held no image" >&2; exit 3; }`,
    `docker tag "$ref" ${BUILT_TAG}`,
  ].join('\n');
}

export function pullScript(ref: string): string {
  return `set -e; docker pull ${q(ref)}; docker tag ${q(ref)} ${BUILT_TAG}`;
}

/** Tracks "Step N/M : INSTRUCTION" lines of the classic builder. */
export class StepTracker {
  step = 0;
  of = 0;
  instruction = '';

  /** Returns the step a line starts, or null. */
  line(text: string): { step: number; of: number; instruction: string } | null {
    const m = /^Step (\d+)\/(\d+) : (.*)$/.exec(text.trim());
    if (!m) return null;
    this.step = Number(m[1]);
    this.of = Number(m[2]);
    this.instruction = (m[3] as string).slice(0, 500);
    return { step: this.step, of: this.of, instruction: this.instruction };
  }

  /** The error for a build that exited non-zero; `tail` is the end of its output. */
  failure(tail: string): KilnError {
    const reason = tail.trim().split('\n').slice(-3).join(' | ').slice(0, 1000);
    if (this.step === 0) return new KilnError('TEMPLATE_BUILD_FAILED', `docker build failed before its first step: ${reason}`, { status: 422 });
    return new KilnError('TEMPLATE_BUILD_STEP_FAILED', `Dockerfile step ${this.step}/${this.of} failed: ${this.instruction}: ${reason}`, {
      status: 422,
      details: { step: this.step, of: this.of, instruction: this.instruction },
    });
  }
}

/** The part of `docker image inspect` .Config a template uses. */
export interface DockerImageConfig {
  Env?: string[] | null;
  WorkingDir?: string;
  User?: string;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  ExposedPorts?: Record<string, unknown> | null;
}

export interface ConfigOverrides {
  startCmd?: string[];
  readyPort?: number;
  readyCmd?: string[];
}

/**
 * The template's config from the image's: ENV for every exec, WORKDIR and USER as exec
 * defaults, ENTRYPOINT + CMD as the start command (unless overridden), and as ready check the
 * given one, else the lowest EXPOSEd TCP port when there is a start command.
 */
export function templateConfig(c: DockerImageConfig, o: ConfigOverrides): ImageTemplateConfig {
  const env: Record<string, string> = {};
  for (const kv of c.Env ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  const startCmd = o.startCmd ?? [...(c.Entrypoint ?? []), ...(c.Cmd ?? [])];
  const exposed = Object.keys(c.ExposedPorts ?? {})
    .map((p) => /^(\d+)\/tcp$/.exec(p)?.[1])
    .filter((p): p is string => p !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
  const readyCmd = o.readyCmd ?? [];
  const readyPort = o.readyPort ?? (readyCmd.length === 0 && startCmd.length > 0 ? (exposed[0] ?? 0) : 0);
  return { env, workdir: c.WorkingDir ?? '', user: c.User ?? '', startCmd, readyPort, readyCmd };
}

/** True if /proc/net/tcp{,6} text shows a socket listening on `port`. */
export function listening(procNetTcp: string, port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return procNetTcp.split('\n').some((l) => {
    const f = l.trim().split(/\s+/);
    return f[1]?.endsWith(`:${hex}`) === true && f[3] === '0A';
  });
}
