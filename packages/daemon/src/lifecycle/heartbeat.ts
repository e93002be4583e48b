/**
 * Heartbeat: every running guest's agent is asked for its health on an interval. A guest whose
 * agent stops answering (hung kernel, dead agent, closed channel) is failed with the reason and
 * its resources reclaimed once it has been silent for the grace period. Paused guests are
 * skipped (their vCPUs are stopped on purpose).
 */
import type { GuestAgent } from '../sandbox/guest-agent.js';
import type { SandboxError, SandboxRecord } from '../sandbox/types.js';

export interface HeartbeatHost {
  records(): SandboxRecord[];
  liveAgent(id: string): GuestAgent | null;
  fail(id: string, error: SandboxError): Promise<void>;
  warn(id: string, msg: string, data?: Record<string, unknown>): void;
}

export interface HeartbeatOptions {
  timeoutMs: number;
  graceMs: number;
}

export class Heartbeat {
  /** Sandbox id → when its agent first missed a check (cleared on an answer). */
  private readonly silentSince = new Map<string, { at: number; why: string }>();
  private readonly inFlight = new Set<string>();

  constructor(
    private readonly h: HeartbeatHost,
    private readonly o: HeartbeatOptions,
  ) {}

  /** One round: checks every running sandbox; resolves when each check has ended. */
  async tick(now = Date.now()): Promise<void> {
    const running = this.h.records().filter((r) => r.state === 'running');
    const ids = new Set(running.map((r) => r.id));
    for (const id of this.silentSince.keys()) if (!ids.has(id)) this.silentSince.delete(id);
    await Promise.all(running.filter((r) => !this.inFlight.has(r.id)).map((r) => this.check(r.id, now)));
  }

  private async check(id: string, now: number): Promise<void> {
    this.inFlight.add(id);
    try {
      const why = await this.probe(id);
      if (why === null) {
        this.silentSince.delete(id);
        return;
      }
      const since = this.silentSince.get(id) ?? { at: now, why };
      this.silentSince.set(id, { at: since.at, why });
      const silentMs = Date.now() - since.at;
      if (silentMs < this.o.graceMs) {
        this.h.warn(id, 'guest agent missed a heartbeat', { why, silentMs });
        return;
      }
      this.silentSince.delete(id);
      await this.h.fail(id, { code: 'GUEST_UNRESPONSIVE', message: `the guest agent has not answered a health check for ${Math.round(silentMs / 1000)} s (grace ${this.o.graceMs} ms; last: ${why})` });
    } finally {
      this.inFlight.delete(id);
    }
  }

  /** null when the agent answered in time, else why not. */
  private async probe(id: string): Promise<string | null> {
    const agent = this.h.liveAgent(id);
    if (!agent) return 'no agent channel';
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), this.o.timeoutMs)));
      const res = await Promise.race([agent.health().then(() => 'ok' as const), timeout]);
      return res === 'ok' ? null : `no answer within ${this.o.timeoutMs} ms`;
    } catch (err) {
      return `health failed: ${(err as Error).message}`;
    } finally {
      clearTimeout(timer);
    }
  }
}
