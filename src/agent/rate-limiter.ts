/**
 * A token bucket for the replication link's bandwidth limit (the project's
 * bandwidthLimitMbps). `take(n)` waits until n bytes may go; the bucket holds at most one
 * second of tokens, so a pause is not followed by a burst above the limit for long. A
 * limit of 0 means unlimited. The clock and sleep are injectable for tests.
 */
import { setTimeout as sleepFor } from "node:timers/promises";

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) => sleepFor(ms, undefined, signal ? { signal } : {}),
};

export class RateLimiter {
  private bytesPerSecond = 0;
  private tokens = 0;
  private last: number;

  constructor(private readonly clock: Clock = realClock) {
    this.last = clock.now();
  }

  /** Sets the limit in bytes per second (0: unlimited). */
  setLimit(bytesPerSecond: number): void {
    if (bytesPerSecond === this.bytesPerSecond) return;
    this.bytesPerSecond = Math.max(0, bytesPerSecond);
    this.tokens = Math.min(this.tokens, this.bytesPerSecond);
  }

  get limit(): number {
    return this.bytesPerSecond;
  }

  /** Waits until `bytes` may be sent under the limit, then takes them. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.bytesPerSecond === 0) return;
    this.refill();
    this.tokens -= bytes;
    if (this.tokens >= 0) return;
    // In debt: wait until the debt is paid back at the current rate.
    await this.clock.sleep((-this.tokens / this.bytesPerSecond) * 1000, signal);
    this.refill();
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(
      this.bytesPerSecond,
      this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond,
    );
    this.last = now;
  }
}
