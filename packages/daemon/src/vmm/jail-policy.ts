/**
 * Whether QEMU runs jailed (vmm/jail.ts), decided once per kilnd. The jail needs root (it
 * makes namespaces, mounts, changes uid, joins cgroups), and it is what stands between a
 * guest that broke out of QEMU and the host: without it kiln fails closed. A kilnd that is
 * not root refuses to start VMs unless the operator passes `--insecure-no-jail` (or sets
 * KILN_INSECURE_NO_JAIL=1), and then `kilnd doctor`, `GET /v1/info` and every VM start event
 * say so.
 */
import { KilnError } from '../errors.js';

export const INSECURE_NO_JAIL_ENV = 'KILN_INSECURE_NO_JAIL';

/** `jailed`: the normal case. `insecure-no-jail`: the operator asked. `refused`: no VM starts. */
export type JailMode = 'jailed' | 'insecure-no-jail' | 'refused';

export interface JailDecision {
  mode: JailMode;
  /** One sentence for logs, doctor and errors. */
  reason: string;
}

/** The env equivalent of `--insecure-no-jail`: `1`, `true` or `yes`. */
export function insecureNoJailFromEnv(env: NodeJS.ProcessEnv = process.env): boolean {
  return ['1', 'true', 'yes'].includes((env[INSECURE_NO_JAIL_ENV] ?? '').toLowerCase());
}

export function decideJail(o: { uid: number | undefined; insecureNoJail: boolean }): JailDecision {
  if (o.insecureNoJail) {
    return { mode: 'insecure-no-jail', reason: `--insecure-no-jail: QEMU runs unjailed as kilnd's user (uid ${o.uid ?? 'unknown'}); a guest that escapes QEMU has that user's rights on the host` };
  }
  if (o.uid === 0) return { mode: 'jailed', reason: 'kilnd is root: each QEMU runs jailed as kiln-vmm' };
  return { mode: 'refused', reason: `kilnd is not root (uid ${o.uid ?? 'unknown'}) and the VMM jail needs root: VMs are refused; run kilnd as root, or pass --insecure-no-jail (${INSECURE_NO_JAIL_ENV}=1) to run QEMU unjailed` };
}

export function jailRefused(d: JailDecision): KilnError {
  return new KilnError('VMM_JAIL_UNAVAILABLE', d.reason, { status: 503 });
}
