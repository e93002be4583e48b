/**
 * Who is calling: the admin (anyone who can open the unix socket — root-equivalent) or a
 * tenant (an API key presented on the TCP listener). Set on each request by the auth hook
 * (auth.ts); a request that never passed through it (fastify inject in unit tests without
 * tenancy) is the admin's.
 */
import type { FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { KeyScope } from './keys.js';
import type { TenantStore } from './tenant-store.js';

/** The admin: the unix socket (no keyId), or a key with the `admin` scope on TCP. */
export type Principal = { kind: 'admin'; keyId?: string; scopes?: KeyScope[] } | { kind: 'tenant'; tenant: string; keyId: string; scopes: KeyScope[] };

export const ADMIN: Principal = { kind: 'admin' };

const PRINCIPAL = Symbol('kiln.principal');
const TENANCY = Symbol('kiln.tenancy');
const TCP = Symbol('kiln.tcpListener');

type Req = FastifyRequest & { [PRINCIPAL]?: Principal; [TENANCY]?: TenantStore };
type Raw = IncomingMessage & { [TCP]?: { clientAddress: string | null } };

/** Marks a raw request as arrived on the TCP listener (listener.ts), with the client's address. */
export function markTcp(raw: IncomingMessage, clientAddress: string | null): void {
  (raw as Raw)[TCP] = { clientAddress };
}

/** The TCP listener's mark of a request (null: it came over the unix socket or was injected). */
export const tcpOf = (raw: IncomingMessage): { clientAddress: string | null } | null => (raw as Raw)[TCP] ?? null;

export function setPrincipal(req: FastifyRequest, p: Principal, store: TenantStore | null): void {
  (req as Req)[PRINCIPAL] = p;
  if (store) (req as Req)[TENANCY] = store;
}

export const principalOf = (req: FastifyRequest): Principal => (req as Req)[PRINCIPAL] ?? ADMIN;

/** The tenant of a request, or null for the admin. */
export function tenantOf(req: FastifyRequest): string | null {
  const p = principalOf(req);
  return p.kind === 'tenant' ? p.tenant : null;
}

export const tenancyOf = (req: FastifyRequest): TenantStore | null => (req as Req)[TENANCY] ?? null;

/** May this request see this sandbox? (The admin sees all; a tenant its own.) */
export function canSee(req: FastifyRequest, sandboxId: string): boolean {
  const t = tenantOf(req);
  if (t === null) return true;
  return tenancyOf(req)?.ownerOf(sandboxId) === t;
}

/** The sandboxes a request may see: null = all (admin), else the tenant's (also destroyed ones). */
export function visibleSandboxes(req: FastifyRequest): Set<string> | null {
  const t = tenantOf(req);
  if (t === null) return null;
  return tenancyOf(req)?.ownedBy(t) ?? new Set();
}
