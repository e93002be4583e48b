/** Validation and defaults of a create request's sandbox shape. Limits are documented here. */
import { invalidArgument, KilnError } from '../errors.js';
import { resolvePolicy, type PolicyInput } from '../network/policy.js';
import type { TemplateSource } from './create-steps.js';
import type { SandboxSpec } from './types.js';
import { resolveVolumeMounts } from '../volume/service.js';

export const SPEC_LIMITS = {
  memoryMiB: { min: 256, max: 65536, default: 1024 },
  vcpus: { min: 1, max: 16, default: 2 },
  diskGiB: { min: 1, max: 1024, default: 10 },
  /** 0 = no timeout. Default 1 hour. */
  timeoutMs: { min: 0, max: 7 * 24 * 3600 * 1000, default: 3600 * 1000 },
  /** No exec or file call for this long destroys the sandbox; 0 = never (default). */
  idleTimeoutMs: { min: 0, max: 7 * 24 * 3600 * 1000, default: 0 },
  /** Auto-pause after this long without guest activity: 0 = never (default), else at least 1 s (a shorter one would pause between a caller's calls). */
  autoPauseMs: { min: 1000, max: 7 * 24 * 3600 * 1000, default: 0 },
} as const;

const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LABEL_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;

export interface SpecInput {
  memoryMiB?: number;
  vcpus?: number;
  diskGiB?: number;
  timeoutMs?: number;
  idleTimeoutMs?: number;
  autoPauseMs?: number;
  env?: Record<string, string>;
  labels?: Record<string, string>;
  template?: string;
  /** Egress policy (network/policy.ts). Default {preset: 'default'}. */
  network?: PolicyInput;
  /** Volumes to attach: name, guest path, read-only (volume/service.ts). */
  volumes?: Array<{ name: string; path: string; readOnly?: boolean }>;
}

/** 0 (off) or an integer within the field's limits. */
function offOrIn(field: 'autoPauseMs', v: number | undefined): number {
  const lim = SPEC_LIMITS[field];
  if (v === undefined || v === 0) return 0;
  if (!Number.isInteger(v) || v < lim.min || v > lim.max) {
    throw invalidArgument(`${field} must be 0 (never) or an integer from ${lim.min} to ${lim.max} ms (got ${v})`, { field });
  }
  return v;
}

function intIn(field: keyof typeof SPEC_LIMITS, v: number | undefined): number {
  const lim = SPEC_LIMITS[field];
  if (v === undefined) return lim.default;
  if (!Number.isInteger(v) || v < lim.min || v > lim.max) {
    throw invalidArgument(`${field} must be an integer from ${lim.min} to ${lim.max} (got ${v})`, { field });
  }
  return v;
}

export function resolveSpec(input: SpecInput, defaults: Partial<SandboxSpec> = {}): SandboxSpec {
  const env = input.env ?? {};
  for (const [k, v] of Object.entries(env)) {
    if (!ENV_KEY_RE.test(k)) throw invalidArgument(`env key ${JSON.stringify(k)} is not a valid variable name`, { field: 'env' });
    if (typeof v !== 'string') throw invalidArgument(`env ${k} must be a string`, { field: 'env' });
  }
  const labels = input.labels ?? {};
  for (const [k, v] of Object.entries(labels)) {
    if (!LABEL_KEY_RE.test(k)) throw invalidArgument(`label key ${JSON.stringify(k)} is invalid`, { field: 'labels' });
    if (typeof v !== 'string' || v.length > 256) throw invalidArgument(`label ${k} must be a string of at most 256 characters`, { field: 'labels' });
  }
  const volumes = resolveVolumeMounts(input.volumes);
  return {
    memoryMiB: intIn('memoryMiB', input.memoryMiB ?? defaults.memoryMiB),
    vcpus: intIn('vcpus', input.vcpus ?? defaults.vcpus),
    diskGiB: intIn('diskGiB', input.diskGiB ?? defaults.diskGiB),
    timeoutMs: intIn('timeoutMs', input.timeoutMs ?? defaults.timeoutMs),
    idleTimeoutMs: intIn('idleTimeoutMs', input.idleTimeoutMs ?? defaults.idleTimeoutMs),
    autoPauseMs: offOrIn('autoPauseMs', input.autoPauseMs ?? defaults.autoPauseMs),
    env: { ...(defaults.env ?? {}), ...env },
    labels,
    template: input.template ?? null,
    network: resolvePolicy(input.network),
    ...(volumes.length > 0 ? { volumes } : {}),
  };
}

/** A create that names a template takes the template's shape; a conflicting shape is refused. */
export async function withTemplateShape(input: SpecInput, name: string, templates: Pick<TemplateSource, 'shapeOf'> | null, tenant: string | null = null): Promise<SpecInput> {
  const found = templates ? await templates.shapeOf(name, tenant) : null;
  if (!found) throw new KilnError('TEMPLATE_NOT_FOUND', `template ${name} not found`, { status: 404, details: { field: 'template' } });
  const { env, ...shape } = found;
  for (const k of ['memoryMiB', 'vcpus', 'diskGiB'] as const) {
    if (input[k] !== undefined && input[k] !== shape[k]) {
      throw new KilnError('INVALID_ARGUMENT', `${k} ${input[k]} conflicts with template ${name} (${k} ${shape[k]}); omit it`, { status: 400, details: { field: k } });
    }
  }
  // A template built from an image carries its ENV: the create's own env overrides it.
  return { ...input, ...shape, ...(env ? { env: { ...env, ...(input.env ?? {}) } } : {}) };
}
