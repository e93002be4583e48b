/**
 * A byte budget per guest log channel (token bucket). kilnd stores guest output line by line
 * on its one event loop: a guest writing `yes > /dev/console` (about 290 KB/s through the
 * emulated UART under TCG) kept kilnd at 45–70% of a core, and every other sandbox's API calls
 * and exec streams waited behind it. Past the budget the collector stops reading the socket:
 * QEMU's chardev then cannot write, the guest's writer blocks, nothing is lost and nothing
 * more costs the host anything until the budget refills.
 */
export class ByteRateGate {
  private tokens: number;
  private last: number;

  /**
   * @param bytesPerSec sustained rate
   * @param burstBytes what may arrive at once (a boot log, an oops dump); default 4 s of rate
   */
  constructor(
    readonly bytesPerSec: number,
    readonly burstBytes = bytesPerSec * 4,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burstBytes;
    this.last = now();
  }

  /** Takes `n` bytes; returns how long to stop reading (ms) before the budget is positive again. */
  take(n: number): number {
    const t = this.now();
    this.tokens = Math.min(this.burstBytes, this.tokens + ((t - this.last) / 1000) * this.bytesPerSec);
    this.last = t;
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.bytesPerSec) * 1000);
  }
}
