/**
 * A fake-driver kilnd API with tenancy and audit on, served on a unix socket (the admin's)
 * and on a loopback TCP listener (optionally TLS), for unit tests of authentication and
 * tenant isolation.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { buildApi } from '../api/server.js';
import { Observability } from '../observability.js';
import { DEFAULT_OBSERVABILITY_CONFIG } from '../observability-config.js';
import { SandboxManager } from '../sandbox/manager.js';
import { Store } from '../store/store.js';
import { TenantAdmission } from '../tenancy/limits.js';
import { listenTcp } from '../tenancy/listener.js';
import { TenantStore } from '../tenancy/tenant-store.js';
import { FakeDriver, fakeAgent, fakeScratchDisk } from './fakes.js';
import type { ConnectAgent } from '../sandbox/guest-agent.js';
import { mountE2b } from '../e2b/index.js';
import { VolumeService } from '../volume/service.js';
import { TemplateService } from '../template/service.js';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * `e2b`: also serve the E2B-compatible API on the TCP listener (e2b/), as kilnd does. `connectAgent`: e.g. the real agent (testing/real-agent.ts).
 * `volumeQuotaGiB`: serve volumes (files made with mkfs.ext4), with this kilnd-wide default quota, wired as kilnd wires it.
 * `templates`: serve templates (a TemplateService over the fake driver; no lazy builds).
 * `registry`: the private registry the manager knows (a fake: only what the API reads of it).
 */
export async function tenancyHarness(o: { tls?: { cert: string; key: string }; trustedProxies?: string[]; poolSize?: number; e2b?: boolean; connectAgent?: ConnectAgent; volumeQuotaGiB?: number; templates?: boolean; registry?: { remoteUrl: string | null } } = {}) {
  const stateDir = await mkdtemp(join(tmpdir(), 'kiln-unit-'));
  const store = new Store(join(stateDir, 'kiln.db'));
  const logger = pino({ level: 'silent' });
  const obs = await Observability.start({ stateDir, ...DEFAULT_OBSERVABILITY_CONFIG }, logger);
  const driver = new FakeDriver();
  const tenants = new TenantStore(store.sql, o.volumeQuotaGiB === undefined ? {} : { maxVolumeGiB: o.volumeQuotaGiB });
  const volumes =
    o.volumeQuotaGiB === undefined
      ? undefined
      : new VolumeService({
          stateDir,
          db: store.sql,
          driver,
          sandboxState: (id) => store.get(id)?.state ?? null,
          quotaBytes: o.volumeQuotaGiB * 1024 ** 3,
          tenantQuotaBytes: (t) => tenants.limits(t).maxVolumeGiB * 1024 ** 3,
        });
  const resolveImage = async () => ({ hash: 'h1', kernel: '/k', initrd: '/i', rootfs: '/r', cmdline: '' });
  const connectAgent: ConnectAgent = o.connectAgent ?? (async () => fakeAgent());
  const templates = o.templates
    ? new TemplateService({ stateDir, logger, resolveImage, lazy: false, driver, connectAgent, createScratchDisk: fakeScratchDisk, vmmVersion: '0', tcgTbSizeMiB: 128 })
    : undefined;
  const manager = new SandboxManager({
    stateDir,
    store,
    driver,
    ...(templates ? { templates } : {}),
    ...(o.registry ? { registry: o.registry as never } : {}),
    logger,
    resolveImage,
    createScratchDisk: fakeScratchDisk,
    poolSize: o.poolSize ?? 0,
    connectAgent,
    observer: obs.observer,
  });
  await manager.init();
  const admission = new TenantAdmission(tenants, () => manager.records());
  const app = await buildApi({ manager, logger, observe: obs.api, tenancy: { store: tenants, admission }, ...(volumes ? { volumes } : {}), ...(templates ? { templates } : {}), info: () => ({ version: 't', driver: {}, image: null, stateDir }) });
  const socket = join(stateDir, 'api.sock');
  await app.listen({ path: socket });
  const e2b = o.e2b ? await mountE2b(store.sql, { manager, tenants, admission, templates: templates ?? null, obs: { sample: (id) => obs.sample(id), logs: (id) => obs.logs.read(id) }, audit: obs.api.registerHooks, logger, domain: 'kiln.test' }) : null;
  const tcp = await listenTcp(app, {
    listen: '127.0.0.1:0',
    tlsCert: o.tls?.cert ?? null,
    tlsKey: o.tls?.key ?? null,
    ...(o.trustedProxies ? { trustedProxies: o.trustedProxies } : {}),
    ...(e2b ? { fronts: [(req: IncomingMessage, res: ServerResponse) => e2b.front.handle(req, res)] } : {}),
  });
  const base = `${o.tls ? 'https' : 'http'}://127.0.0.1:${tcp.address.port}`;
  return {
    stateDir,
    app,
    store,
    manager,
    tenants,
    templates,
    audit: obs.audit,
    base,
    tcp,
    e2b,
    /** A request on the TCP listener. */
    fetch: (path: string, init: RequestInit & { key?: string } = {}) => {
      const { key, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (key !== undefined) headers.set('authorization', `Bearer ${key}`);
      if (rest.body !== undefined && !headers.has('content-type')) headers.set('content-type', 'application/json');
      return fetch(base + path, { ...rest, headers });
    },
    async close() {
      await tcp.close();
      await e2b?.close();
      await app.close();
      await manager.shutdown();
      await obs.close();
      store.close();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
