/** Proxy metrics per sandbox and port: requests by status class, bytes each way, open connections. */
import { Counter, Gauge, type Registry } from 'prom-client';

export class ProxyMetrics {
  private readonly requests: Counter<'sandbox' | 'port' | 'status_class'>;
  private readonly bytes: Counter<'sandbox' | 'port' | 'direction'>;
  private readonly open: Gauge<'sandbox'>;
  private readonly denials: Counter<'reason'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({ name: 'kiln_proxy_requests_total', help: 'Proxied requests (WebSocket upgrades included) by sandbox, port and status class (2xx…5xx)', labelNames: ['sandbox', 'port', 'status_class'], registers });
    this.bytes = new Counter({ name: 'kiln_proxy_bytes_total', help: 'Proxied bytes by sandbox, port and direction (in: to the guest, out: from it)', labelNames: ['sandbox', 'port', 'direction'], registers });
    this.open = new Gauge({ name: 'kiln_proxy_connections_open', help: 'Open connections into sandboxes through the proxy', labelNames: ['sandbox'], registers });
    this.denials = new Counter({ name: 'kiln_proxy_denials_total', help: 'Proxy requests refused, by reason', labelNames: ['reason'], registers });
  }

  request(sandbox: string, port: number, status: number): void {
    this.requests.inc({ sandbox, port: String(port), status_class: `${Math.floor(status / 100)}xx` });
  }

  transferred(sandbox: string, port: number, bytesIn: number, bytesOut: number): void {
    if (bytesIn) this.bytes.inc({ sandbox, port: String(port), direction: 'in' }, bytesIn);
    if (bytesOut) this.bytes.inc({ sandbox, port: String(port), direction: 'out' }, bytesOut);
  }

  opened(sandbox: string, delta: number): void {
    this.open.inc({ sandbox }, delta);
  }

  denied(reason: string): void {
    this.denials.inc({ reason });
  }

  /** Drops a destroyed sandbox's gauge (its counters stay: they are totals). */
  forget(sandbox: string): void {
    this.open.remove({ sandbox });
  }
}
