/**
 * Reads a VM's guest log channels, which QEMU serves as unix sockets (`server=on,wait=off`):
 *   console.sock — the serial console (kernel, guest init), stored as service `console`;
 *   logs.sock    — virtio-serial port org.kiln.logs, lines `<service> <text>` written by the
 *                  guest's log forwarder (dockerd, agent).
 * kilnd, not QEMU, writes what is stored, so the cap holds. A dropped connection (kilnd
 * restarted, QEMU busy) is retried every `retryMs` until stop(); QEMU accepts the new
 * client, and the guest's forwarder, which blocks while no host is connected, resumes.
 */
import { connect, type Socket } from 'node:net';
import { LineSplitter } from './lines.js';
import { ByteRateGate } from './rate-gate.js';
import type { LogService, SandboxLogStore } from './store.js';

export interface CollectorPaths {
  consoleSocket: string;
  logsSocket: string;
}

const GUEST_SERVICES: ReadonlySet<string> = new Set(['dockerd', 'agent']);

export class LogCollector {
  private stopped = false;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Connections made per channel (1 = never dropped). */
  readonly connects = { console: 0, logs: 0 };

  constructor(
    private readonly store: SandboxLogStore,
    private readonly paths: CollectorPaths,
    private readonly retryMs = 500,
    /** Bytes per second read from the service-log channel, past a burst of 4 s (logs/rate-gate.ts). Default 64 KiB/s. */
    private readonly rateBytesPerSec = 64 * 1024,
    /**
     * Bytes per second read from the console, past a burst of max(64 KiB, 4 s): QEMU's UART
     * writes one byte per system call, so each console byte costs the host (QEMU and kilnd)
     * far more than a service-log byte. Measured with `yes > /dev/console` in one guest: at
     * 64 KiB/s kilnd used 0.15–0.23 of a core and the guest's QEMU ~0.3; at 8 KiB/s 0.06 and
     * 0.05. Default 8 KiB/s.
     */
    private readonly consoleRateBytesPerSec = 8 * 1024,
  ) {}

  start(): void {
    this.open('console', this.paths.consoleSocket, (line) => this.store.append('console', line));
    this.open('logs', this.paths.logsSocket, (line) => {
      const sp = line.indexOf(' ');
      const tag = sp < 0 ? line : line.slice(0, sp);
      // An unknown tag is stored as the agent's (the forwarder only sends known ones; a guest
      // writing to the port itself gets no new service names).
      const service: LogService = GUEST_SERVICES.has(tag) ? (tag as LogService) : 'agent';
      this.store.append(service, GUEST_SERVICES.has(tag) ? line.slice(sp + 1) : line);
    });
  }

  private open(channel: 'console' | 'logs', path: string, onLine: (l: string) => void): void {
    if (this.stopped) return;
    const split = new LineSplitter(onLine);
    const gate =
      channel === 'console'
        ? new ByteRateGate(this.consoleRateBytesPerSec, Math.max(64 * 1024, this.consoleRateBytesPerSec * 4))
        : new ByteRateGate(this.rateBytesPerSec);
    const sock = connect(path);
    this.sockets.add(sock);
    sock.on('connect', () => this.connects[channel]++);
    sock.on('data', (b: Buffer) => {
      split.push(b);
      const waitMs = gate.take(b.length);
      if (waitMs === 0 || this.stopped) return;
      // over budget: stop reading; QEMU's writes (and so the guest's) wait
      sock.pause();
      const t = setTimeout(() => {
        this.timers.delete(t);
        sock.resume();
      }, waitMs);
      this.timers.add(t);
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      split.end();
      this.sockets.delete(sock);
      if (this.stopped) return;
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.open(channel, path, onLine);
      }, this.retryMs);
      this.timers.add(t);
    });
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}
