/**
 * A warm pool: N sandboxes of the default shape, restored and personalized ahead of time and
 * not yet assigned. A create that matches takes one (no restore on the request path) and the
 * pool refills in the background, one member at a time. Members count as sandboxes (they use
 * memory) but are not listed as the user's; they are destroyed when kilnd shuts down.
 */
import type { Logger } from 'pino';
import type { SandboxRecord } from './types.js';

export interface PoolHost {
  /** Members of this pool in the store (creating or running). */
  members(pool: string): SandboxRecord[];
  /** Creates one member (resolves when it is running). */
  createMember(pool: string): Promise<void>;
  log: Logger;
}

export class WarmPool {
  private filling: Promise<void> | null = null;
  private stopped = false;

  constructor(
    readonly name: string,
    readonly size: number,
    private readonly h: PoolHost,
    private readonly retryDelayMs = 5000,
  ) {}

  /** A running member to hand out, or null. Claiming it is the caller's job. */
  available(): SandboxRecord | null {
    return this.h.members(this.name).find((r) => r.state === 'running') ?? null;
  }

  /** Starts refilling in the background if the pool is short. */
  kick(): void {
    if (this.stopped || this.size <= 0 || this.filling) return;
    this.filling = this.fill().finally(() => {
      this.filling = null;
    });
  }

  private async fill(): Promise<void> {
    while (!this.stopped && this.h.members(this.name).length < this.size) {
      try {
        await this.h.createMember(this.name);
      } catch (err) {
        this.h.log.warn({ err, pool: this.name }, 'warm pool member failed; retrying later');
        await new Promise((r) => setTimeout(r, this.retryDelayMs).unref());
      }
    }
  }

  /** Stops refilling and waits for a fill in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.filling;
  }
}
