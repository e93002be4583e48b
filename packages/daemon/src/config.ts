/** kilnd configuration. Every option documents its default. */
import type { AccelRequest } from './vmm/accel.js';
import { insecureNoJailFromEnv } from './vmm/jail-policy.js';
import { DEFAULT_TCG_TB_SIZE_MIB } from './vmm/tb-size.js';
import { DEFAULT_OBSERVABILITY_CONFIG, type ObservabilityConfig } from './observability-config.js';
import { DEFAULT_NETWORK_CONFIG, type NetworkConfig } from './network/config.js';
import { DEFAULT_LIFECYCLE_CONFIG, type LifecycleConfig } from './lifecycle/config.js';
import { DEFAULT_EVENT_RETENTION, type EventRetention } from './store/events.js';

export interface DaemonConfig {
  /** Unix socket of the API. Default /run/kiln/kiln.sock. */
  socket: string;
  /** State directory: SQLite file, images, per-sandbox run dirs. Default /var/lib/kiln. */
  stateDir: string;
  /** Accelerator: auto (default) picks KVM only with vmx/svm and a working /dev/kvm. */
  accel: AccelRequest;
  /** Run QEMU without its jail (vmm/jail-policy.ts); a kilnd that is not root needs it to start VMs. */
  insecureNoJail: boolean;
  /** TCG translation cache per VM in MiB (vmm/tb-size.ts). Default 512 (`kilnd run` also reads --tcg-tb-size and $KILN_TCG_TB_SIZE_MIB: daemon-options.ts). */
  tcgTbSizeMiB: number;
  /** Destroy every sandbox when kilnd exits. Default false (VMs are re-adopted on restart). */
  destroyOnExit: boolean;
  /** pino level. Default info. */
  logLevel: string;
  /** Boot → agent answer timeout per attempt. Default 90000 ms. */
  bootTimeoutMs: number;
  /**
   * A clone of a boot template is handed out before its dockerd answers again (it answered when
   * the template was snapshotted); it then has this long, or the sandbox fails with
   * DOCKER_NOT_READY. Default 30000 ms (KILN_RESTORED_DOCKER_CHECK_MS).
   */
  restoredDockerCheckMs: number;
  /** Restore sandboxes from template snapshots (and build missing ones lazily). Default true. */
  templates: boolean;
  /** After a cold boot, build the missing template of that shape in the background. Default true. */
  lazyTemplates: boolean;
  /** Warm pool: restored, unassigned sandboxes of the default shape kept ready. Default 0. */
  poolSize: number;
  /** Audit log, guest logs, resource sampling (observability.ts documents each default). */
  observability: Omit<ObservabilityConfig, 'stateDir'>;
  /** Sandbox networking: uplink, subnet, resolver upstreams (network/config.ts documents each default). */
  network: NetworkConfig;
  /** Capacity limits, heartbeat and garbage collection (lifecycle/config.ts documents each default). */
  lifecycle: LifecycleConfig;
  /** Retention of lifecycle events: by age and by count (store/events.ts documents each default: 30 days, 100 000 events). */
  events: EventRetention;
  /** TCP listener HOST:PORT (API keys required there). Default none: the unix socket only ($KILN_LISTEN). */
  listen: string | null;
  /** TLS certificate and key (PEM files) of the TCP listener. Default none: plain HTTP ($KILN_TLS_CERT, $KILN_TLS_KEY). */
  tlsCert: string | null;
  tlsKey: string | null;
  /** Reverse proxies whose X-Forwarded-For is believed, by exact address. Default none ($KILN_TRUSTED_PROXIES). */
  trustedProxies: string[];
  /** The sandbox proxy's listener HOST:PORT (docs/ports.md). Default none ($KILN_PROXY_LISTEN). */
  proxyListen: string | null;
  /** The proxy's domain: ports are <port>-<sandbox id>.<domain>. Default "localhost" ($KILN_PROXY_DOMAIN). */
  proxyDomain: string;
  /** The proxy's TLS certificate and key; default the API listener's ($KILN_PROXY_TLS_CERT, $KILN_PROXY_TLS_KEY). */
  proxyTlsCert: string | null;
  proxyTlsKey: string | null;
  /** The scheme, host suffix and port of proxy URLs when clients reach the proxy through another reverse proxy (e.g. "https://preview.example.com"); default derived from the listener ($KILN_PROXY_PUBLIC_URL). */
  proxyPublicUrl: string | null;
  /** `domain` in E2B answers (getHost(port) = `<port>-<id>.<domain>`). Default `localhost:<TCP port>` ($KILN_E2B_DOMAIN; docs/e2b.md). */
  e2bDomain: string | null;
}

export const DEFAULT_CONFIG: DaemonConfig = {
  socket: process.env.KILN_SOCKET ?? '/run/kiln/kiln.sock',
  stateDir: process.env.KILN_STATE_DIR ?? '/var/lib/kiln',
  accel: 'auto',
  insecureNoJail: insecureNoJailFromEnv(),
  tcgTbSizeMiB: DEFAULT_TCG_TB_SIZE_MIB,
  destroyOnExit: false,
  logLevel: process.env.KILN_LOG_LEVEL ?? 'info',
  bootTimeoutMs: 90_000,
  restoredDockerCheckMs: Number(process.env.KILN_RESTORED_DOCKER_CHECK_MS ?? 30_000),
  templates: process.env.KILN_TEMPLATES !== '0',
  lazyTemplates: process.env.KILN_LAZY_TEMPLATES !== '0',
  poolSize: Number(process.env.KILN_POOL_SIZE ?? 0),
  observability: DEFAULT_OBSERVABILITY_CONFIG,
  network: DEFAULT_NETWORK_CONFIG,
  lifecycle: DEFAULT_LIFECYCLE_CONFIG,
  events: DEFAULT_EVENT_RETENTION,
  listen: null,
  tlsCert: null,
  tlsKey: null,
  trustedProxies: [],
  proxyListen: null,
  proxyDomain: 'localhost',
  proxyTlsCert: null,
  proxyTlsKey: null,
  proxyPublicUrl: null,
  e2bDomain: process.env.KILN_E2B_DOMAIN || null,
};
