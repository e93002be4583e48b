/**
 * kilnd's command-line options, in one place: the flags (`kilnd run` parses them) and their
 * translation, with the environment, into a
 * DaemonConfig. Flags win over environment variables, which win over the defaults.
 */
import { DEFAULT_CONFIG, type DaemonConfig } from './config.js';
import { tcgTbSizeMiB } from './vmm/tb-size.js';

export interface DaemonFlags {
  socket?: string;
  stateDir?: string;
  accel?: string;
  destroyOnExit?: boolean;
  logLevel?: string;
  pool?: string;
  netUplink?: string;
  netSubnet?: string;
  netDns?: string;
  net?: boolean;
  listen?: string;
  tlsCert?: string;
  tlsKey?: string;
  trustedProxies?: string;
  e2bDomain?: string;
  eventsMaxAgeDays?: string;
  eventsMaxRows?: string;
  insecureNoJail?: boolean;
  proxyListen?: string;
  proxyDomain?: string;
  proxyTlsCert?: string;
  proxyTlsKey?: string;
  proxyPublicUrl?: string;
  tcgTbSize?: string;
}

/** [flags, description] of each option (commander syntax). */
export const DAEMON_OPTIONS: ReadonlyArray<readonly [string, string]> = [
  ['--state-dir <DIR>', 'state directory (default /var/lib/kiln)'],
  ['--accel <auto|kvm|tcg>', 'accelerator (default auto)'],
  ['--destroy-on-exit', 'destroy every sandbox when the daemon exits (default: keep them for re-adoption)'],
  ['--log-level <LEVEL>', 'log level (default info)'],
  ['--pool <N>', 'keep N restored, unassigned sandboxes of the default shape ready (default 0)'],
  ['--net-uplink <host|none|netns:NAME>', 'where sandbox traffic leaves: the host (masqueraded), none, or a named netns (default host; $KILN_NET_UPLINK)'],
  ['--net-subnet <CIDR>', 'sandbox address space, one /29 per sandbox (default 10.210.0.0/16; $KILN_NET_SUBNET)'],
  ['--net-dns <IP,…>', "upstream DNS of the sandbox resolvers (default the host's resolv.conf; $KILN_NET_DNS)"],
  ['--no-net', 'give sandboxes no network at all (default: networking on)'],
  ['--events-max-age-days <DAYS>', 'delete lifecycle events older than this; 0 = no age limit (default 30; $KILN_EVENTS_MAX_AGE_DAYS)'],
  ['--events-max-rows <N>', 'keep at most the newest N lifecycle events; 0 = no count limit (default 100000; $KILN_EVENTS_MAX_ROWS)'],
  ['--tcg-tb-size <MiB>', 'TCG translation cache per VM, when there is no KVM (default 512; part of the template key; $KILN_TCG_TB_SIZE_MIB)'],
  ['--insecure-no-jail', "run QEMU without its jail (needed to start VMs when kilnd is not root; a guest escaping QEMU then has kilnd's rights; $KILN_INSECURE_NO_JAIL=1)"],
  ['--listen <HOST:PORT>', 'also serve the API on TCP; every request there needs an API key (default none; $KILN_LISTEN)'],
  ['--tls-cert <PEM>', 'TLS certificate of the TCP listener (default none: plain HTTP; $KILN_TLS_CERT)'],
  ['--tls-key <PEM>', 'TLS private key of the TCP listener ($KILN_TLS_KEY)'],
  ['--proxy-listen <HOST:PORT>', 'serve the sandbox proxy (ports inside sandboxes, docs/ports.md) on TCP (default none; $KILN_PROXY_LISTEN)'],
  ['--proxy-domain <DOMAIN>', 'proxy host names are <port>-<sandbox id>.<DOMAIN> (default localhost; $KILN_PROXY_DOMAIN)'],
  ['--proxy-tls-cert <PEM>', "TLS certificate of the proxy listener (default the API listener's --tls-cert; $KILN_PROXY_TLS_CERT)"],
  ['--proxy-tls-key <PEM>', 'TLS private key of the proxy listener ($KILN_PROXY_TLS_KEY)'],
  ['--proxy-public-url <URL>', 'scheme://domain[:port] under which clients reach the proxy, when it runs behind another reverse proxy (default from the listener; $KILN_PROXY_PUBLIC_URL)'],
  ['--trusted-proxies <IP,…>', 'reverse proxies whose X-Forwarded-For is believed (default none; $KILN_TRUSTED_PROXIES)'],
  ['--e2b-domain <DOMAIN>', 'domain in E2B API answers: sandbox.getHost(port) is <port>-<id>.<DOMAIN> (default localhost:<TCP port>; $KILN_E2B_DOMAIN)'],
];

const list = (s: string | undefined): string[] | undefined => (s === undefined ? undefined : s.split(',').map((x) => x.trim()).filter(Boolean));

/** The config the flags and environment ask for. Throws on a malformed value. */
export function daemonConfigFromOptions(o: DaemonFlags, env: NodeJS.ProcessEnv = process.env): Partial<DaemonConfig> {
  if (o.accel !== undefined && !['auto', 'kvm', 'tcg'].includes(o.accel)) throw new Error(`--accel must be auto, kvm or tcg (got ${o.accel})`);
  if (o.pool !== undefined && !/^\d+$/.test(o.pool)) throw new Error(`--pool must be a whole number (got ${o.pool})`);
  if (o.eventsMaxAgeDays !== undefined && !/^\d+(\.\d+)?$/.test(o.eventsMaxAgeDays)) throw new Error(`--events-max-age-days must be a number of days (got ${o.eventsMaxAgeDays})`);
  if (o.eventsMaxRows !== undefined && !/^\d+$/.test(o.eventsMaxRows)) throw new Error(`--events-max-rows must be a whole number (got ${o.eventsMaxRows})`);
  const tbSizeText = o.tcgTbSize ?? env.KILN_TCG_TB_SIZE_MIB;
  const tbSize = tbSizeText === undefined ? undefined : tcgTbSizeMiB(tbSizeText, o.tcgTbSize !== undefined ? '--tcg-tb-size' : '$KILN_TCG_TB_SIZE_MIB');
  const socket = o.socket ?? env.KILN_SOCKET;
  const listen = o.listen ?? env.KILN_LISTEN;
  const tlsCert = o.tlsCert ?? env.KILN_TLS_CERT;
  const tlsKey = o.tlsKey ?? env.KILN_TLS_KEY;
  if (!!tlsCert !== !!tlsKey) throw new Error('TLS needs both --tls-cert and --tls-key');
  const proxyListen = o.proxyListen ?? env.KILN_PROXY_LISTEN;
  const proxyDomain = o.proxyDomain ?? env.KILN_PROXY_DOMAIN;
  const proxyTlsCert = o.proxyTlsCert ?? env.KILN_PROXY_TLS_CERT ?? (proxyListen ? tlsCert : undefined);
  const proxyTlsKey = o.proxyTlsKey ?? env.KILN_PROXY_TLS_KEY ?? (proxyListen ? tlsKey : undefined);
  const proxyPublicUrl = o.proxyPublicUrl ?? env.KILN_PROXY_PUBLIC_URL;
  if (tlsCert && !listen && !proxyListen) throw new Error('--tls-cert/--tls-key need --listen or --proxy-listen');
  if (!!proxyTlsCert !== !!proxyTlsKey) throw new Error('proxy TLS needs both --proxy-tls-cert and --proxy-tls-key');
  if (proxyDomain !== undefined && !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/i.test(proxyDomain)) throw new Error(`--proxy-domain must be a DNS name (got ${proxyDomain})`);
  if (proxyPublicUrl !== undefined && !/^https?:\/\/[^/]+\/?$/.test(proxyPublicUrl)) throw new Error(`--proxy-public-url must be scheme://domain[:port] (got ${proxyPublicUrl})`);
  const proxies = list(o.trustedProxies ?? env.KILN_TRUSTED_PROXIES);
  return {
    ...(o.pool !== undefined ? { poolSize: Number(o.pool) } : {}),
    ...(socket ? { socket } : {}),
    ...(o.stateDir ? { stateDir: o.stateDir } : {}),
    ...(o.accel ? { accel: o.accel as 'auto' | 'kvm' | 'tcg' } : {}),
    ...(o.logLevel ? { logLevel: o.logLevel } : {}),
    ...(tbSize !== undefined ? { tcgTbSizeMiB: tbSize } : {}),
    ...(listen ? { listen } : {}),
    ...(tlsCert && tlsKey ? { tlsCert, tlsKey } : {}),
    ...(proxies ? { trustedProxies: proxies } : {}),
    ...(o.e2bDomain ? { e2bDomain: o.e2bDomain } : {}),
    ...(o.insecureNoJail ? { insecureNoJail: true } : {}),
    ...(proxyListen ? { proxyListen } : {}),
    ...(proxyDomain ? { proxyDomain: proxyDomain.toLowerCase() } : {}),
    ...(proxyListen && proxyTlsCert && proxyTlsKey ? { proxyTlsCert, proxyTlsKey } : {}),
    ...(proxyPublicUrl ? { proxyPublicUrl: proxyPublicUrl.replace(/\/$/, '') } : {}),
    destroyOnExit: o.destroyOnExit ?? false,
    events: {
      ...DEFAULT_CONFIG.events,
      ...(o.eventsMaxAgeDays !== undefined ? { maxAgeMs: Number(o.eventsMaxAgeDays) * 24 * 3600 * 1000 } : {}),
      ...(o.eventsMaxRows !== undefined ? { maxRows: Number(o.eventsMaxRows) } : {}),
    },
    network: {
      ...DEFAULT_CONFIG.network,
      ...(o.net === false ? { enabled: false } : {}),
      ...(o.netUplink ? { uplink: o.netUplink } : {}),
      ...(o.netSubnet ? { subnet: o.netSubnet } : {}),
      ...(o.netDns ? { dnsUpstream: list(o.netDns) ?? [] } : {}),
    },
  };
}
