/**
 * A warm pool: N sandboxes of the default shape, restored and personalized ahead of time and
 * not yet assigned. A create that matches takes one (no restore on the request path) and the
 * pool refills in the background, one member at a time. Members count as sandboxes (they use
 * memory) but are not listed as the user's; they are destroyed when kilnd shuts down.
 *
 * Claiming is the pool's: a member is reserved the moment it is chosen (nothing is awaited in
 * between), so two creates never receive the same VM, however long the hand-over takes.
 */
import type { Logger } from 'pino';
import type { SandboxRecord } from './types.js';

export interface PoolHost {
  /** Members of this pool in the store (creating or running). */
  members(pool: string): SandboxRecord[];
  /** Creates one member (resolves when it is running). */
  createMember(pool: string): Promise<void>;
  /** Destroys a member whose hand-over failed (its state is unknown). */
  discard(id: string): Promise<void>;
  log: Logger;
}

export class WarmPool {
  private filling: Promise<void> | null = null;
  private stopped = false;
  /** Members being handed over: chosen, not yet the caller's. */
  private readonly reserved = new Set<string>();

  constructor(
    readonly name: string,
    readonly size: number,
    private readonly h: PoolHost,
    private readonly retryDelayMs = 5000,
  ) {}

  /** Running members that no claim has reserved. */
  ready(): SandboxRecord[] {
    return this.h.members(this.name).filter((r) => r.state === 'running' && !this.reserved.has(r.id));
  }

  /**
   * Hands a ready member to a caller, or returns null when none is ready. The member is
   * reserved before anything is awaited; `handOver` makes it the caller's (its policy, its
   * owner). A member whose hand-over fails is discarded and null returned: the caller makes
   * a sandbox of its own instead. The pool refills either way.
   */
  async claim(handOver: (member: SandboxRecord) => Promise<SandboxRecord>): Promise<SandboxRecord | null> {
    const member = this.ready()[0];
    if (!member) return null;
    this.reserved.add(member.id);
    try {
      return await handOver(member);
    } catch (err) {
      this.h.log.warn({ err, pool: this.name, sandboxId: member.id }, 'warm pool hand-over failed; discarding the member');
      await this.h.discard(member.id).catch((e: unknown) => this.h.log.error({ err: e, sandboxId: member.id }, 'discarding a warm pool member failed'));
      return null;
    } finally {
      this.reserved.delete(member.id);
      this.kick();
    }
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
