/**
 * E2B create: `POST /v2/sandboxes` (SDK 2.51+, `NewSandboxV2`) and `POST /sandboxes` (≤2.50,
 * `NewSandbox`, adds `secure`). Answers 201 with E2B's `Sandbox` once the sandbox runs.
 *
 *  - templateID: `base` is kiln's default template; any other name is a kiln template in the
 *    tenant's namespace: its own, then a shared one (another tenant's answers 404 like a missing one).
 *  - timeout: seconds, default 300 (E2B's); 0 = none (kiln's meaning).
 *  - metadata: kept by the E2B layer (store.ts), matched by list filters.
 *  - envVars: the sandbox's `spec.env` — kiln's environment for every command it runs, which
 *    the data plane (e2b-envd) applies to each process under the per-call envs.
 *  - secure / envdAccessToken: every sandbox has a token (store.ts); `secure` changes nothing.
 *  - allow_internet_access: false → kiln's `none` network preset.
 *  - autoPause (lifecycle.onTimeout 'pause') and autoResume: on-timeout.ts; autoPauseMemory
 *    false (a filesystem-only pause) is not kiln's: a pause always keeps memory.
 *  - mcp, network egress rules, iam tokens and volumeMounts: 501 E2B_UNSUPPORTED naming the field.
 */
import type { FastifyInstance } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import type { SandboxManager } from '../sandbox/manager.js';
import type { SpecInput } from '../sandbox/spec.js';
import type { TenantAdmission } from '../tenancy/limits.js';
import { tenancyOf } from '../tenancy/principal.js';
import { assertTemplateVisible } from '../tenancy/templates.js';
import type { TemplateService } from '../template/service.js';
import { e2bTenant } from './auth.js';
import { unsupported } from './errors.js';
import type { PauseOnTimeout } from './on-timeout.js';
import { newAccessToken, type E2bStore } from './store.js';
import { BASE_TEMPLATE, sandboxBody, type E2bContext } from './views.js';

/** E2B's default sandbox lifetime, seconds. */
export const DEFAULT_TIMEOUT_S = 300;

const StringMap = Type.Record(Type.String(), Type.String());
export const NewSandboxBody = Type.Object({
  templateID: Type.String({ minLength: 1, maxLength: 128 }),
  timeout: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 24 * 3600 })),
  metadata: Type.Optional(StringMap),
  envVars: Type.Optional(StringMap),
  secure: Type.Optional(Type.Boolean()),
  allow_internet_access: Type.Optional(Type.Boolean()),
  autoPause: Type.Optional(Type.Boolean()),
  autoPauseMemory: Type.Optional(Type.Boolean()),
  autoResume: Type.Optional(Type.Object({ enabled: Type.Optional(Type.Boolean()) })),
  mcp: Type.Optional(Type.Unknown()),
  network: Type.Optional(Type.Unknown()),
  iam: Type.Optional(Type.Unknown()),
  volumeMounts: Type.Optional(Type.Array(Type.Unknown())),
});
export type NewSandbox = Static<typeof NewSandboxBody>;

/** What of a create body kiln cannot honour, or null. */
export function unsupportedField(b: NewSandbox): string | null {
  if (b.autoResume?.enabled && !b.autoPause) return "lifecycle.autoResume without onTimeout 'pause'";
  if (b.mcp !== undefined && b.mcp !== null) return 'mcp (the MCP gateway)';
  // Of `network`, kiln honours allowPublicTraffic (the proxy: docs/e2b.md); egress rules are kiln's own policy API.
  const network = b.network !== null && typeof b.network === 'object' ? Object.keys(b.network).filter((k) => k !== 'allowPublicTraffic') : [];
  if (network.length > 0) return `network.${network.join(', network.')} (egress rules at create; kiln has its own network policy API)`;
  if (b.iam !== undefined && b.iam !== null) return 'iam (workload identity tokens)';
  if (b.volumeMounts?.length) return 'volumeMounts';
  return null;
}

/** The kiln create input of an E2B create body. */
export function specOf(b: NewSandbox): SpecInput {
  return {
    // A sandbox that pauses at its timeout has no kiln timeout (which destroys): on-timeout.ts.
    timeoutMs: b.autoPause ? 0 : (b.timeout ?? DEFAULT_TIMEOUT_S) * 1000,
    ...(b.envVars ? { env: b.envVars } : {}),
    ...(b.templateID !== BASE_TEMPLATE ? { template: b.templateID } : {}),
    ...(b.allow_internet_access === false ? { network: { preset: 'none' as const } } : {}),
  };
}

export interface CreateDeps {
  manager: SandboxManager;
  admission: TenantAdmission | null;
  templates: TemplateService | null;
  store: E2bStore;
  ctx: E2bContext;
  onTimeout: PauseOnTimeout;
}

export function registerCreateRoutes(app: FastifyInstance, d: CreateDeps): void {
  for (const path of ['/v2/sandboxes', '/sandboxes']) {
    app.post<{ Body: NewSandbox }>(path, { schema: { body: NewSandboxBody } }, async (req, reply) => {
      const tenant = e2bTenant(req);
      const b = req.body;
      const missing = unsupportedField(b);
      if (missing) throw unsupported(missing);
      if (b.templateID !== BASE_TEMPLATE) await assertTemplateVisible(req, d.templates, b.templateID);
      const owners = tenancyOf(req);
      const timeoutS = b.timeout ?? DEFAULT_TIMEOUT_S;
      const lifecycle = b.autoPause ? { onTimeout: 'pause' as const, autoResume: b.autoResume?.enabled === true, timeoutS, endAt: null } : {};
      const publicTraffic = (b.network as { allowPublicTraffic?: unknown } | undefined)?.allowPublicTraffic !== false;
      const row = { metadata: b.metadata ?? {}, templateId: b.templateID, accessToken: newAccessToken(), viaE2b: true, publicTraffic, ...lifecycle };
      const rec = await d.manager.create(specOf(b), {
        wait: true,
        // templateID names a template in the tenant's namespace (its own, then shared).
        tenant,
        own: (id) => {
          owners?.setOwner(id, tenant);
          d.store.put({ sandboxId: id, ...row });
        },
        ...(d.admission ? { admit: (spec) => (d.admission as TenantAdmission).admit(tenant, spec) } : {}),
      });
      if (b.autoPause && timeoutS > 0) d.onTimeout.arm(rec.id, Date.now() + timeoutS * 1000);
      return reply.status(201).send(sandboxBody(rec, { sandboxId: rec.id, ...row }, d.ctx));
    });
  }
}
