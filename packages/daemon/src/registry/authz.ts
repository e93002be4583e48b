/**
 * Who may do what in the private registry. Repositories are namespaced by tenant: a tenant's
 * sandboxes (and its API key, for `kiln image push`) read and write `<tenant>/…`, and read the
 * shared `library/…`; the admin's sandboxes read and write everything. Anything else — another
 * tenant's repositories, the catalog, a cross-repository blob mount from a repository it cannot
 * read — is refused. The registry API (distribution v2) names the repository in the path.
 */
export const SHARED_NAMESPACE = 'library';

export type RegistryAccess = { ok: true; repo: string | null } | { ok: false; status: number; reason: string };

const V2 = /^\/v2\/(.+)\/(manifests|blobs|tags)\/(.*)$/;

function canRead(tenant: string | null, repo: string): boolean {
  if (tenant === null) return true;
  const ns = repo.split('/')[0];
  return ns === tenant || ns === SHARED_NAMESPACE;
}

function canWrite(tenant: string | null, repo: string): boolean {
  if (tenant === null) return true;
  return repo.split('/')[0] === tenant && repo.includes('/');
}

/** Decides a request of `tenant` (null: the admin) for `method` `url` (path and query). */
export function registryAccess(tenant: string | null, method: string, url: string): RegistryAccess {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  if (path === '/v2/' || path === '/v2') return { ok: true, repo: null };
  if (path.includes('..') || path.includes('//')) return { ok: false, status: 400, reason: 'malformed path' };
  const m = V2.exec(path);
  if (!m) return { ok: false, status: 403, reason: `${path} is not served here (the catalog is not listed)` };
  const repo = m[1] ?? '';
  const read = method === 'GET' || method === 'HEAD';
  if (read ? !canRead(tenant, repo) : !canWrite(tenant, repo)) {
    return { ok: false, status: 403, reason: `${read ? 'pull from' : 'push to'} ${repo} is not allowed${tenant === null ? '' : ` for tenant ${tenant} (its repositories are ${tenant}/…; ${SHARED_NAMESPACE}/… is shared read-only)`}` };
  }
  const from = params.get('from');
  if (from !== null && !canRead(tenant, from)) return { ok: false, status: 403, reason: `mounting a blob from ${from} is not allowed` };
  return { ok: true, repo };
}
