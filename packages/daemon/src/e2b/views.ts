/**
 * kiln sandbox rows in E2B's response shapes: `Sandbox` (create, connect), `SandboxDetail`
 * (GET /sandboxes/{id}) and `ListedSandbox` (lists). Field names and types are E2B's OpenAPI
 * spec's; the SDK maps them (startedAt/endAt as RFC 3339, alias → name, metadata ?? {}).
 */
import type { SandboxRecord } from '../sandbox/types.js';
import { ENVD_VERSION } from './envd-version.js';
import { e2bIdOf } from './ids.js';
import type { E2bRow } from './store.js';

/** E2B's constant client id (the SDK ignores it; the schema requires it). */
export const CLIENT_ID = '6532622b';
/** The template E2B's SDK asks for by default; kiln's default template. */
export const BASE_TEMPLATE = 'base';

export interface E2bContext {
  /** `domain` of answers: `sandbox.getHost(port)` is `<port>-<id>.<domain>`; null lets the SDK use E2B_DOMAIN. */
  domain: string | null;
}

export type E2bState = 'running' | 'paused';

/** The E2B state of a kiln sandbox, or null when E2B would not show it (creating, stopping, gone). */
export function e2bState(r: SandboxRecord): E2bState | null {
  if (r.state === 'running') return 'running';
  if (r.state === 'paused') return 'paused';
  return null;
}

/** The envd access token of a sandbox: the row's own (branch proxy) when it has one, else the E2B layer's. */
export const accessTokenOf = (r: SandboxRecord, e: E2bRow): string => (r as SandboxRecord & { accessToken?: string }).accessToken ?? e.accessToken;

const iso = (ms: number): string => new Date(ms).toISOString();
const templateOf = (r: SandboxRecord, e: E2bRow): string => e.templateId || (r.spec.template ?? BASE_TEMPLATE);
/** No timeout (kiln's 0) is shown as a far end, as E2B has no such state; a pause-on-timeout sandbox's end is its pause timer's. */
const endAt = (r: SandboxRecord, e: E2bRow): string => iso((e.onTimeout === 'pause' ? e.endAt : r.expiresAt) ?? Date.UTC(9999, 11, 31));

export function sandboxBody(r: SandboxRecord, e: E2bRow, ctx: E2bContext) {
  const t = templateOf(r, e);
  return {
    templateID: t,
    sandboxID: e2bIdOf(r.id),
    alias: t,
    clientID: CLIENT_ID,
    envdVersion: ENVD_VERSION,
    envdAccessToken: accessTokenOf(r, e),
    trafficAccessToken: null,
    domain: ctx.domain,
  };
}

export function listedBody(r: SandboxRecord, e: E2bRow) {
  const t = templateOf(r, e);
  return {
    templateID: t,
    alias: t,
    sandboxID: e2bIdOf(r.id),
    clientID: CLIENT_ID,
    startedAt: iso(r.readyAt ?? r.createdAt),
    endAt: endAt(r, e),
    cpuCount: r.spec.vcpus,
    memoryMB: r.spec.memoryMiB,
    diskSizeMB: r.spec.diskGiB * 1024,
    state: e2bState(r) ?? 'running',
    envdVersion: ENVD_VERSION,
    metadata: e.metadata,
    volumeMounts: [],
  };
}

export function detailBody(r: SandboxRecord, e: E2bRow, ctx: E2bContext) {
  return {
    ...listedBody(r, e),
    envdAccessToken: accessTokenOf(r, e),
    domain: ctx.domain,
    allowInternetAccess: (r.spec.network?.preset ?? 'default') !== 'none',
    lifecycle: { autoResume: e.autoResume ?? false, onTimeout: e.onTimeout ?? 'kill' },
  };
}
