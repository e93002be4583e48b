/**
 * kilnd's HTTP API (fastify). Listens on a unix socket by default. Every request body, query
 * and params object is validated against the TypeBox schemas in schemas.ts; unknown fields
 * are refused (removeAdditional is off), and every error leaves as {error:{code,message}}.
 */
import { randomBytes } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import type { Logger } from 'pino';
import { installErrorHandlers } from './error-handler.js';
import { ERROR_CODES, errorCodeTable, SANDBOX_FAILURE_CODES } from '@kiln/contract';
import type { ApiObservability } from '../observability.js';
import type { SandboxManager } from '../sandbox/manager.js';
import { registerSandboxRoutes } from './routes/sandboxes.js';
import { registerExecRoutes } from './routes/exec.js';
import { registerNetworkRoutes } from './routes/network.js';
import type { NetworkService } from '../network/service.js';
import { registerFileRoutes } from './routes/files.js';
import { registerProcessRoutes } from './routes/processes.js';
import { registerMcpRoutes, type McpRouteOptions } from './routes/mcp.js';
import { registerFileTreeRoutes } from './routes/files-tree.js';
import { registerPtyRoutes } from './routes/pty.js';
import websocket from '@fastify/websocket';
import { registerSystemRoutes, type SystemInfo } from './routes/system.js';
import { registerTemplateRoutes } from './routes/templates.js';
import { registerLifecycleRoutes } from './routes/lifecycle.js';
import type { TemplateService } from '../template/service.js';
import { registerAuthEnforce, registerAuthIdentify, tcpActor } from '../tenancy/auth.js';
import type { TenantAdmission } from '../tenancy/limits.js';
import type { TenantStore } from '../tenancy/tenant-store.js';
import { registerKeyRoutes } from './routes/keys.js';
import { registerUiRoutes } from './routes/ui.js';
import { registerDoctorRoutes } from './routes/doctor.js';
import { WS_KEY_PROTOCOL, WS_PROTOCOL } from '../tenancy/keys.js';
import { registerPortRoutes } from './routes/ports.js';
import type { ProxyService } from '../proxy/service.js';
import { registerVolumeRoutes } from './routes/volumes.js';
import type { VolumeService } from '../volume/service.js';
import { registerImageRoutes } from './routes/images.js';
import type { RegistryService } from '../registry/service.js';

export interface ApiOptions {
  manager: SandboxManager;
  templates?: TemplateService;
  /** Sandbox networking; absent = its routes answer NETWORK_DISABLED. */
  network?: NetworkService | null;
  logger: Logger;
  info: () => SystemInfo;
  /** Audit hooks and the audit/logs/stats/metrics routes; absent in unit tests that don't need them. */
  observe?: ApiObservability;
  /** Garbage collection on demand (the reaper's); default: the manager's orphan collection. */
  gc?: () => Promise<string[]>;
  /** API keys, tenants, their limits; absent = every caller is the admin (unit tests). */
  tenancy?: { store: TenantStore; admission: TenantAdmission };
  /** The sandbox proxy's ports and tokens (docs/ports.md); absent = no ports routes, no access tokens. */
  proxy?: ProxyService;
  /** Persistent volumes; absent = the volume routes are not served. */
  volumes?: VolumeService;
  /** The private registry; absent = the image routes are not served. */
  registry?: RegistryService | null;
  /** kiln's MCP server at /mcp (streamable HTTP); absent = no /mcp. */
  mcp?: McpRouteOptions;
}

export async function buildApi(opts: ApiOptions): Promise<FastifyInstance> {
  const app: FastifyInstance = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    bodyLimit: 1024 * 1024,
    genReqId: () => `req-${randomBytes(6).toString('hex')}`,
  });
  // Bodies are JSON and must match exactly (no coercion, unknown fields refused); query
  // strings are text, so their numbers and booleans are coerced.
  const strict = new Ajv({ removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false, strict: false });
  const lenient = new Ajv({ removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false, strict: false });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : lenient).compile(schema));

  // File uploads and stdin arrive as raw byte streams: hand the stream to the route.
  app.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));

  installErrorHandlers(app);

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'kilnd API',
        version: '1',
        description: `microVM sandboxes with a private Docker daemon.\n\nEvery error is \`{error:{code,message,details?}}\` with one of these codes (\`x-kiln-error-codes\` has them as data; \`sandbox.error.code\` may also be one of the last rows):\n\n${errorCodeTable()}`,
      },
      components: {
        securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key (kiln_<id>_<secret>), required on the TCP listener; the unix socket is the admin channel and needs none.' } },
        schemas: {
          Error: {
            type: 'object',
            required: ['error'],
            properties: {
              error: {
                type: 'object',
                required: ['code', 'message'],
                properties: { code: { type: 'string', enum: Object.keys(ERROR_CODES) }, message: { type: 'string' }, details: {} },
              },
            },
          },
        },
      },
      security: [{ apiKey: [] }],
      'x-kiln-error-codes': ERROR_CODES,
      'x-kiln-sandbox-failure-codes': SANDBOX_FAILURE_CODES,
    } as Record<string, unknown>,
  });

  registerSystemRoutes(app, opts.info);
  // Who is calling (before the audit hook, which records it), then what they may do (after it).
  registerAuthIdentify(app, opts.tenancy?.store ?? null);
  opts.observe?.registerHooks(app, tcpActor);
  registerAuthEnforce(app);
  opts.observe?.registerRoutes(app, opts.manager);
  registerSandboxRoutes(app, opts.manager, opts.tenancy?.admission ?? null, opts.templates ?? null, opts.proxy ? (id) => (opts.proxy as ProxyService).ports.token(id) : null);
  if (opts.proxy) registerPortRoutes(app, opts.manager, opts.proxy);
  if (opts.tenancy) registerKeyRoutes(app, opts.tenancy.store, opts.tenancy.admission, opts.volumes ?? null);
  registerExecRoutes(app, opts.manager, opts.observe?.audit);
  registerFileRoutes(app, opts.manager, opts.observe?.audit);
  registerFileTreeRoutes(app, opts.manager, opts.observe?.audit);
  registerProcessRoutes(app, opts.manager, opts.observe?.audit);
  // Terminal WebSockets. Keystrokes are audited only when the operator asks (KILN_AUDIT_PTY_INPUT=1).
  // A browser offers its key as a `kiln.key.<key>` subprotocol (tenancy/auth.ts): the answer
  // names `kiln.v1`, never the key.
  const handleProtocols = (offered: Set<string>): string | false => (offered.has(WS_PROTOCOL) ? WS_PROTOCOL : ([...offered].find((p) => !p.startsWith(WS_KEY_PROTOCOL)) ?? false));
  await app.register(websocket, { options: { maxPayload: 1024 * 1024, handleProtocols } });
  await app.register(async (scope) => registerPtyRoutes(scope, opts.manager, opts.observe?.audit, { recordInput: process.env.KILN_AUDIT_PTY_INPUT === '1' }));
  registerNetworkRoutes(app, opts.manager, opts.network ?? null);
  registerLifecycleRoutes(app, opts.manager, opts.gc ?? (() => opts.manager.collect()));
  if (opts.templates) registerTemplateRoutes(app, opts.manager, opts.templates, opts.tenancy?.admission ?? null);
  if (opts.volumes) registerVolumeRoutes(app, opts.volumes);
  if (opts.registry) registerImageRoutes(app, opts.manager, opts.registry);
  if (opts.mcp) {
    const mcp = registerMcpRoutes(app, opts.mcp);
    app.addHook('onClose', async () => mcp.closeAll());
  }

  registerDoctorRoutes(app, () => {
    const i = opts.info();
    return { stateDir: i.stateDir, insecureNoJail: i.jail?.mode === 'insecure-no-jail' };
  });
  registerUiRoutes(app);

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  return app;
}
