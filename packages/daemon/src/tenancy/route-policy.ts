/**
 * Which routes a tenant key may call (deny by default): every route under
 * /v1/sandboxes (each one naming a sandbox is checked for ownership in auth.ts, so routes
 * added later are covered), and the few host-wide reads below, which answer with the
 * tenant's share only. Everything else — keys, tenants, gc, metrics, audit verification,
 * template boots of a shape — is the admin's (the unix socket).
 */
const TENANT_ROUTES = new Set([
  'GET /v1/health',
  'GET /v1/info',
  'GET /v1/events',
  'GET /v1/audit',
  'GET /v1/stats',
  'GET /v1/templates',
  'DELETE /v1/templates/:name',
  'POST /v1/templates/build',
  'GET /openapi.json',
  'GET /ui',
  'GET /ui/',
  'GET /ui/*',
  // kiln's MCP server: each tool call goes back through the API with the caller's key (api/routes/mcp.ts).
  'POST /mcp',
  'GET /mcp',
  'DELETE /mcp',
]);

/** Routes that answer without a key on TCP: liveness, and the dashboard's static files (no data). */
const OPEN_ROUTES = new Set(['GET /v1/health', 'GET /ui', 'GET /ui/', 'GET /ui/*']);

export const isOpenRoute = (method: string, url: string | undefined): boolean => OPEN_ROUTES.has(`${method === 'HEAD' ? 'GET' : method} ${url ?? ''}`);

export function tenantMayCall(method: string, url: string | undefined): boolean {
  if (url === undefined) return true; // no route: 404 ROUTE_NOT_FOUND follows
  if (url === '/v1/sandboxes' || url.startsWith('/v1/sandboxes/')) return true;
  // Volumes: each tenant sees and changes its own only (routes/volumes.ts names them in its namespace).
  if (url === '/v1/volumes' || url.startsWith('/v1/volumes/')) return true;
  // Images: pushed into and listed from the tenant's own namespace of the registry (routes/images.ts).
  if (url === '/v1/images' || url.startsWith('/v1/images/')) return true;
  return TENANT_ROUTES.has(`${method === 'HEAD' ? 'GET' : method} ${url}`);
}

/** A `read-only` key may only read: GET/HEAD, and no interactive terminal (a GET upgrade). */
export function readOnlyMayCall(method: string, url: string | undefined, upgrade: boolean): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  if (upgrade || (url ?? '').endsWith('/pty')) return false;
  return true;
}
