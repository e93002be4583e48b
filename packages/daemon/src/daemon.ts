/**
 * kilnd: wires the store, the VMM driver, the sandbox manager and the API together, and
 * listens on a unix socket (mode 0660). VMs outlive the daemon unless destroyOnExit is set.
 */
import { capacityView } from './lifecycle/capacity.js';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { sandboxesDir } from './sandbox/run-dir.js';
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import { AgentClient } from '@kiln/protocol';
import { buildApi } from './api/server.js';
import { VolumeService } from './volume/service.js';
import { RegistryService, registryInstalled } from './registry/service.js';
import { requestLogMixin } from './audit/context.js';
import { Observability } from './observability.js';
import { DEFAULT_CONFIG, type DaemonConfig } from './config.js';
import { createScratchDisk } from './image/index.js';
import { ImageResolver } from './image/resolver.js';
import { NetworkService } from './network/service.js';
import { SandboxManager } from './sandbox/manager.js';
import { Store } from './store/store.js';
import { QemuDriver } from './vmm/qemu.js';
import { removeVmmOrphans } from './vmm/host-cleanup.js';
import type { VmmDriver } from './vmm/driver.js';
import { CpuBalancer } from './lifecycle/cpu-balancer.js';
import { readCpuSeconds } from './metrics/proc-stats.js';
import { KILN_VERSION } from './version.js';
import { TemplateService } from './template/service.js';
import type { ConnectAgent } from './sandbox/guest-agent.js';
import { Reaper } from './lifecycle/reaper.js';
import { hostKey } from './sandbox/ids.js';
import { TenantStore } from './tenancy/tenant-store.js';
import { TenantAdmission } from './tenancy/limits.js';
import { listenTcp, type TcpListener } from './tenancy/listener.js';
import { ProxyService } from './proxy/service.js';
import type { ManagerObserver } from './sandbox/observer.js';
import { e2bDomain, e2bPorts, ENVD_PORT, mountE2b, type E2bLayer } from './e2b/index.js';
import { listenTenantSocket, type TenantSocket } from './tenancy/tenant-socket.js';

export interface Daemon {
  config: DaemonConfig;
  app: FastifyInstance;
  /** The TCP listener's address, when there is one. */
  tcp: TcpListener['address'] | null;
  /** The sandbox proxy (docs/ports.md); its listener's address when it has one. */
  proxy: ProxyService;
  proxyAddress: { host: string; port: number; tls: boolean } | null;
  tenants: TenantStore;
  /** The E2B-compatible API (docs/e2b.md); the data plane registers in `e2b.front.portHandlers`. */
  e2b: E2bLayer;
  manager: SandboxManager;
  templates: TemplateService;
  logger: Logger;
  close(opts?: { destroyAll?: boolean }): Promise<void>;
}

export async function startDaemon(partial: Partial<DaemonConfig> = {}, deps: { driver?: VmmDriver; logger?: Logger } = {}): Promise<Daemon> {
  const config: DaemonConfig = { ...DEFAULT_CONFIG, ...partial };
  const logger = deps.logger ?? pino({ level: config.logLevel, mixin: requestLogMixin }, pino.destination(2));
  await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
  await mkdir(dirname(config.socket), { recursive: true, mode: 0o755 });
  const store = new Store(join(config.stateDir, 'kiln.db'), { eventRetention: config.events });
  store.eventLog.startPruning();
  // Audit first: every later step (reconcile included) is recorded.
  const obs = await Observability.start({ stateDir: config.stateDir, ...config.observability }, logger);
  const driver = deps.driver ?? new QemuDriver({ accel: config.accel, tcgTbSizeMiB: config.tcgTbSizeMiB, insecureNoJail: config.insecureNoJail });
  const caps = driver.capabilities();
  logger.info({ accel: caps.accel, reason: caps.accelReason }, 'accelerator');
  if (caps.jail && caps.jail !== 'jailed') logger.warn({ jail: caps.jail }, caps.jailReason ?? 'QEMU is not jailed');

  const images = new ImageResolver(config.stateDir);
  const resolveImage = () => images.resolve();

  const connectAgent: ConnectAgent = (path, o) => AgentClient.connect(path, o);
  const templates = new TemplateService({
    stateDir: config.stateDir,
    logger,
    driver,
    connectAgent,
    createScratchDisk,
    vmmVersion: caps.version,
    tcgTbSizeMiB: config.tcgTbSizeMiB,
    resolveImage,
    bootTimeoutMs: config.bootTimeoutMs,
    lazy: config.lazyTemplates,
  });
  const removedTemplates = await templates.gc();
  if (removedTemplates.length) logger.info({ removed: removedTemplates }, 'removed stale or partial templates');

  const network = config.network.enabled
    ? new NetworkService({
        config: config.network,
        db: store.sql,
        sandboxesDir: sandboxesDir(config.stateDir),
        logger: logger.child({ component: 'network' }),
        onPolicyChanged: (id, c) => store.addEvent(id, 'policy', { how: c.how, before: c.before, after: c.after }),
      })
    : null;
  await network?.init();

  // The proxy's ports and token of a sandbox go with it (set once the proxy exists, below).
  let proxy: ProxyService | null = null;
  const observer: ManagerObserver = {
    ...obs.observer,
    transition: (rec, from, to) => {
      obs.observer.transition?.(rec, from, to);
      if (to === 'destroyed') proxy?.forget(rec.id);
    },
  };
  // The private registry (docs/registry.md): on with networking when docker-registry is installed.
  let tenantsRef: TenantStore | null = null;
  const registry =
    network && process.env.KILN_REGISTRY !== '0' && registryInstalled()
      ? new RegistryService({
          stateDir: config.stateDir,
          logger: logger.child({ component: 'registry' }),
          remoteUrl: process.env.KILN_REGISTRY_REMOTE_URL || null,
          remoteUsername: process.env.KILN_REGISTRY_REMOTE_USERNAME || null,
          remotePassword: process.env.KILN_REGISTRY_REMOTE_PASSWORD || null,
          tenantOf: (id) => tenantsRef?.ownerOf(id) ?? null,
        })
      : null;
  await registry?.start();
  // Each tenant's volume quota is its maxVolumeGiB limit; KILN_VOLUME_QUOTA_GIB is the default (and the admin's).
  const envQuotaGiB = Number(process.env.KILN_VOLUME_QUOTA_GIB ?? '');
  const quotaGiB = Number.isFinite(envQuotaGiB) && envQuotaGiB > 0 ? envQuotaGiB : null;
  const volumes = new VolumeService({
    stateDir: config.stateDir,
    db: store.sql,
    driver,
    sandboxState: (id) => store.get(id)?.state ?? null,
    ...(quotaGiB !== null ? { quotaBytes: Math.round(quotaGiB * 1024 ** 3) } : {}),
    tenantQuotaBytes: (t) => Math.round((tenantsRef?.limits(t).maxVolumeGiB ?? quotaGiB ?? 100) * 1024 ** 3),
  });
  const manager = new SandboxManager({
    stateDir: config.stateDir,
    volumes,
    registry,
    store,
    driver,
    logger,
    resolveImage,
    createScratchDisk,
    connectAgent,
    templates: config.templates ? templates : null,
    poolSize: config.templates ? config.poolSize : 0,
    observer,
    bootTimeoutMs: config.bootTimeoutMs,
    restoredDockerCheckMs: config.restoredDockerCheckMs,
    network,
    capacity: config.lifecycle,
  });
  await manager.init();
  // Sandboxes adopted from an earlier kilnd reach the registry again (their forwarder is restarted).
  if (registry && network) {
    for (const rec of manager.records()) {
      const net = rec.state === 'running' || rec.state === 'paused' ? network.get(rec.id) : null;
      if (net) await registry.attach(rec.id, { netns: net.names.netns, gateway: net.addresses.gateway }, join(sandboxesDir(config.stateDir), rec.id)).catch((err: unknown) => logger.warn({ err, sandboxId: rec.id }, 'registry re-attach failed'));
    }
  }
  removeVmmOrphans(driver, store, logger);
  const reaper = new Reaper(
    {
      records: () => manager.records(),
      liveAgent: (id) => manager.liveAgent(id),
      fail: (id, error) => manager.fail(id, error),
      warn: (id, msg, data) => logger.warn({ sandboxId: id, ...data }, msg),
      lastActivityAt: (id) => manager.lastActivityAt(id),
      expireIdle: (id, idleMs) => manager.expireIdle(id, idleMs),
      collect: () => manager.collect(),
    },
    config.lifecycle,
    logger.child({ component: 'reaper' }),
  );
  const balancer = new CpuBalancer(
    {
      vms: () => manager.records().flatMap((r) => (r.vm && (r.state === 'running' || r.state === 'paused') ? [{ id: r.id, vm: r.vm }] : [])),
      cpuSeconds: (vm) => readCpuSeconds(vm.pid),
      setDemoted: (vm, demoted) => driver.setCpuDemoted?.(vm, demoted),
      changed: (id, demoted, cores) => store.addEvent(id, demoted ? 'cpu-demoted' : 'cpu-restored', { cores }),
    },
    { intervalMs: driver.setCpuDemoted ? config.lifecycle.cpuBalanceIntervalMs : 0 },
  );
  obs.bind(manager, network ? (id, fresh) => network.byteCounters(id, fresh) : undefined);
  await resolveImage().catch(() => null);

  const tenants = new TenantStore(store.sql, quotaGiB !== null ? { maxVolumeGiB: quotaGiB } : {});
  tenantsRef = tenants;
  const admission = new TenantAdmission(tenants, () => manager.records());
  // E2B sandboxes' ports are public unless created with allowPublicTraffic false (docs/e2b.md).
  let e2bRef: E2bLayer | null = null;
  proxy = new ProxyService(
    { listen: config.proxyListen, domain: config.proxyDomain, tlsCert: config.proxyTlsCert, tlsKey: config.proxyTlsKey, publicUrl: config.proxyPublicUrl },
    { db: store.sql, stateDir: config.stateDir, manager, tenants, audit: obs.audit, registry: obs.metrics.registry, logger, allPorts: (id) => e2bPorts(e2bRef?.store.get(id) ?? null) },
  );
  const proxySvc = proxy;
  const app = await buildApi({
    registry,
    volumes,
    manager,
    tenancy: { store: tenants, admission },
    proxy: proxySvc,
    // /mcp: tool calls of a TCP caller go through the tenant socket with its key; the admin's through the unix socket.
    mcp: { tenantSocket: config.listen ? join(config.stateDir, 'mcp-tenant.sock') : null, adminSocket: config.socket },
    templates,
    network,
    logger,
    observe: obs.api,
    // kiln gc: this kilnd's orphans, then kiln network objects on the host that no live kilnd owns.
    gc: async () => [...(await reaper.collect()), ...(network ? (await network.collectForeign((hex) => store.list().some((r) => hostKey(r.id) === hex))).removed : [])],
    info: () => ({
      version: KILN_VERSION,
      driver: { ...caps },
      jail: caps.jail ? { mode: caps.jail, reason: caps.jailReason ?? '' } : null,
      image: images.last ? { hash: images.last.hash, kernelVersion: images.last.kernelVersion } : null,
      stateDir: config.stateDir,
      pool: manager.poolStatus(),
      capacity: capacityView(manager.list(), config.lifecycle),
      proxy: proxySvc.info(),
    }),
  });
  await rm(config.socket, { force: true });
  await app.listen({ path: config.socket });
  await chmod(config.socket, 0o660);
  // The E2B-compatible API shares the TCP listener (e2b/dispatch.ts says which requests are its).
  const e2b = await mountE2b(store.sql, { manager, tenants, admission, templates, obs: { sample: (id) => obs.sample(id), logs: (id) => obs.logs.read(id) }, audit: obs.api.registerHooks, guestAudit: obs.audit, logger, domain: null });
  e2bRef = e2b;
  // One access token per sandbox for kiln's proxy and E2B's envd; E2B's in-sandbox API is also
  // port 49983 on the proxy, and the E2B front hands other ports to the proxy.
  e2b.ctx.tokenOf = (id) => proxySvc.ports.token(id);
  e2b.front.ctx = e2b.ctx;
  e2b.front.otherPorts = proxySvc.proxy.onRequest;
  const envd = e2b.front.portHandlers.get(ENVD_PORT);
  if (envd) proxySvc.registerPortHandler(ENVD_PORT, envd);
  let tcp: TcpListener | null = null;
  let proxyAddress: Awaited<ReturnType<ProxyService['listen']>> = null;
  let tenantSocket: TenantSocket | null = null;
  try {
    if (config.listen) tcp = await listenTcp(app, { listen: config.listen, tlsCert: config.tlsCert, tlsKey: config.tlsKey, trustedProxies: config.trustedProxies, fronts: [(req, res) => e2b.front.handle(req, res)] });
    if (config.listen) tenantSocket = await listenTenantSocket(app, join(config.stateDir, 'mcp-tenant.sock'));
    proxyAddress = await proxySvc.listen();
  } catch (err) {
    await tenantSocket?.close();
    await tcp?.close();
    await e2b.close();
    await app.close();
    throw err;
  }
  // getHost(port) = <port>-<id>.<domain>: the proxy's host names when it listens.
  e2b.ctx.domain = e2bDomain(config.e2bDomain ?? proxySvc.hostSuffix(), tcp?.address ?? null);
  manager.start();
  reaper.start();
  balancer.start();
  logger.info({ socket: config.socket, stateDir: config.stateDir, tcp: tcp?.address ?? null, proxy: proxyAddress }, 'kilnd listening');

  let closing: Promise<void> | null = null;
  return {
    config,
    app,
    tcp: tcp?.address ?? null,
    proxy: proxySvc,
    proxyAddress,
    tenants,
    e2b,
    manager,
    templates,
    logger,
    close: (opts = {}) =>
      (closing ??= (async () => {
        await tcp?.close();
        await proxySvc.close();
        await tenantSocket?.close();
        await e2b.close();
        await app.close();
        await reaper.stop();
        balancer.stop();
        await templates.idle();
        await manager.shutdown({ destroyAll: opts.destroyAll ?? config.destroyOnExit });
        await obs.close();
        await registry?.stop();
        network?.close();
        store.eventLog.stopPruning();
        store.close();
        await rm(config.socket, { force: true });
      })()),
  };
}
