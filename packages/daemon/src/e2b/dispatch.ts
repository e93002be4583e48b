/**
 * Which requests on kiln's TCP listener are E2B's, and where they go. kiln's own API lives
 * under /v1/ (and /openapi.json, /metrics); E2B's control plane uses its own paths
 * (/sandboxes, /v2/sandboxes, …), so both share one listener and `E2B_API_URL` =
 * `E2B_SANDBOX_URL` = the listener's origin. The one shared path is `GET /health`:
 *
 *  - a request carrying `E2b-Sandbox-Id` is data plane (the SDK's in-sandbox calls): the sandbox
 *    must exist (else 502 in E2B's proxy shape, so `isRunning()` is false), the envd access
 *    check is made here (envd-access.ts), `manager.wake` runs (a user-paused sandbox stays
 *    paused: 502), and the request goes to the handler registered for
 *    its `E2b-Sandbox-Port` (49983 = envd: `E2bFront.portHandlers`, filled by branch e2b-envd;
 *    other ports: branch proxy). Without a handler: `GET /health` answers 204 for a running
 *    sandbox, anything else 501 naming the missing data plane;
 *  - any other request whose path is an E2B control-plane path goes to the E2B API (app.ts);
 *  - everything else is kiln's.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { SandboxManager } from '../sandbox/manager.js';
import { envdAccess } from './envd-access.js';
import { kilnIdOf } from './ids.js';
import type { E2bStore } from './store.js';
import { accessTokenOf, BASE_TEMPLATE } from './views.js';

/** envd's port, as the SDK names it in `E2b-Sandbox-Port`. */
export const ENVD_PORT = 49983;

/** Serves a data-plane request for a sandbox (kiln id), its access already checked. */
export type DataPlaneHandler = (req: IncomingMessage, res: ServerResponse, ctx: { sandboxId: string }) => void;

/** Path prefixes of E2B's control plane (E2B's spec/openapi.yml). */
const CONTROL = /^\/(?:health$|sandboxes(?:\/|$|\?)|v2\/sandboxes(?:\/|$|\?)|snapshots|templates|v2\/templates|v3\/templates|volumes|secrets|teams|api-keys|access-tokens|nodes)/;

export const isE2bControlPath = (url: string): boolean => CONTROL.test(url.split('?')[0] as string) && !url.startsWith('/v1/');

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

export class E2bFront {
  /** Data-plane handlers by sandbox port (49983: envd). */
  readonly portHandlers = new Map<number, DataPlaneHandler>();

  constructor(
    private readonly manager: SandboxManager,
    private readonly store: E2bStore,
    private readonly control: (req: IncomingMessage, res: ServerResponse) => void,
    /** lifecycle.autoResume: resumes a paused sandbox created with it (on-timeout.ts). */
    private readonly autoResume: (id: string) => Promise<void> = async () => undefined,
  ) {}

  /** Takes the request if it is E2B's (true), else leaves it to kiln's API (false). */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const header = req.headers['e2b-sandbox-id'];
    if (header !== undefined) {
      this.dataPlane(req, res, Array.isArray(header) ? (header[0] ?? '') : header);
      return true;
    }
    if (!isE2bControlPath(req.url ?? '/')) return false;
    this.control(req, res);
    return true;
  }

  private dataPlane(req: IncomingMessage, res: ServerResponse, e2bId: string): void {
    this.route(req, res, e2bId).catch(() => {
      if (!res.headersSent) json(res, 502, { sandboxId: e2bId, message: 'The sandbox was not found', code: 502 });
      else res.destroy();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse, e2bId: string): Promise<void> {
    const id = kilnIdOf(e2bId);
    const found = id ? this.manager.list().find((r) => r.id === id) : undefined;
    const notFound = () => json(res, 502, { sandboxId: e2bId, message: 'The sandbox was not found', code: 502 });
    if (!found || (found.state !== 'running' && found.state !== 'paused')) return notFound();
    const row = this.store.ensure(found.id, found.spec.template ?? BASE_TEMPLATE);
    const access = envdAccess(req.method ?? 'GET', req.url ?? '/', req.headers, accessTokenOf(found, row));
    if (!access.ok) return json(res, 401, { code: 401, message: access.message });
    // Traffic wakes a sandbox that auto-pause paused, and one created with E2B's autoResume;
    // one the user paused stays paused and is not running for the SDK (502, as E2B's proxy
    // answers; isRunning() is false).
    if (found.state === 'paused' && row.autoResume) await this.autoResume(found.id);
    const rec = await this.manager.wake(found.id);
    if (rec.state !== 'running') return json(res, 502, { sandboxId: e2bId, message: `The sandbox is ${rec.state}`, code: 502 });
    const portRaw = req.headers['e2b-sandbox-port'];
    const port = Number(Array.isArray(portRaw) ? portRaw[0] : (portRaw ?? ENVD_PORT));
    const handler = this.portHandlers.get(port);
    if (handler) return handler(req, res, { sandboxId: rec.id });
    if (port === ENVD_PORT && req.method === 'GET' && (req.url ?? '').split('?')[0] === '/health') return void res.writeHead(204).end();
    const message = port === ENVD_PORT ? 'this kilnd has no E2B in-sandbox API (envd) yet: commands, files and pty through the E2B SDK are not available' : `kiln does not route sandbox port ${port} through E2B_SANDBOX_URL yet`;
    // Connect RPCs (/pkg.Service/Method) want a Connect error code; REST paths E2B's numeric one.
    const connect = /^\/[a-z]+\.[A-Za-z]+\/[A-Za-z]+$/.test((req.url ?? '').split('?')[0] ?? '');
    return json(res, 501, { code: connect ? 'unimplemented' : 501, message });
  }
}
