/**
 * A sandbox's operation lock, read/write style. Operations that change the VM's state (pause,
 * resume, snapshot, destroy, a warm-pool hand-over) hold it exclusively: one at a time, in the
 * order they came. Guest operations (an exec's start, a file call) share it: any number at once,
 * but none starts while an exclusive operation runs or waits, so a stream of execs cannot
 * starve a snapshot and an exec never lands in a VM that a pause is freezing.
 *
 * An exclusive taker may pass `waitForShared: false` (destroy): it waits for the exclusive
 * operation before it (a snapshot) but not for shared holders, which it ends itself (it closes
 * the agent their calls run on).
 */

/** Gives the lock back; calling it again does nothing. */
export type Release = () => void;

interface Waiter {
  exclusive: boolean;
  waitForShared: boolean;
  grant: () => void;
}

export class OpLock {
  private shared = 0;
  private exclusive = false;
  private readonly queue: Waiter[] = [];

  /** True when nothing holds the lock or waits for it. */
  get idle(): boolean {
    return this.shared === 0 && !this.exclusive && this.queue.length === 0;
  }

  acquireShared(): Promise<Release> {
    return this.enqueue({ exclusive: false, waitForShared: true });
  }

  acquireExclusive(opts: { waitForShared?: boolean } = {}): Promise<Release> {
    return this.enqueue({ exclusive: true, waitForShared: opts.waitForShared ?? true });
  }

  async runShared<T>(fn: () => Promise<T> | T): Promise<T> {
    const release = await this.acquireShared();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  async runExclusive<T>(fn: () => Promise<T> | T, opts: { waitForShared?: boolean } = {}): Promise<T> {
    const release = await this.acquireExclusive(opts);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  private enqueue(w: Omit<Waiter, 'grant'>): Promise<Release> {
    return new Promise<Release>((resolve) => {
      this.queue.push({
        ...w,
        grant: () => {
          let released = false;
          resolve(() => {
            if (released) return;
            released = true;
            if (w.exclusive) this.exclusive = false;
            else this.shared--;
            this.pump();
          });
        },
      });
      this.pump();
    });
  }

  /** Grants waiters from the head of the queue while they can run. */
  private pump(): void {
    while (this.queue.length > 0 && !this.exclusive) {
      const head = this.queue[0] as Waiter;
      if (head.exclusive) {
        if (head.waitForShared && this.shared > 0) return;
        this.queue.shift();
        this.exclusive = true;
        head.grant();
        return;
      }
      this.queue.shift();
      this.shared++;
      head.grant();
    }
  }
}

/** One lock per sandbox id, made on first use and dropped with the sandbox. */
export class OpLocks {
  private readonly locks = new Map<string, OpLock>();

  of(id: string): OpLock {
    let l = this.locks.get(id);
    if (!l) {
      l = new OpLock();
      this.locks.set(id, l);
    }
    return l;
  }

  /** Forgets a sandbox's lock (a waiter still queued on it is granted as usual). */
  drop(id: string): void {
    this.locks.delete(id);
  }
}
