/**
 * A token bucket for the replication link's bandwidth limit (the project's
 * bandwidthLimitMbps). `take(n)` waits until n bytes may go (the link takes 64 KiB slices
 * of each frame); the bucket holds a tenth of a second of tokens (at least one slice), so a
 * pause is followed by no burst worth speaking of and the rate holds within a few percent
 * over any few seconds. A limit of 0 means unlimited. The clock and sleep are injectable
 * for tests.
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

/** Seconds of tokens the bucket holds. */
const BURST_SECONDS = 0.1;
/** The bucket holds at least this much, so that one paced slice never waits on capacity. */
const MIN_BURST_BYTES = 64 * 1024;

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
    this.tokens = Math.min(this.tokens, this.capacity());
  }

  private capacity(): number {
    return Math.max(MIN_BURST_BYTES, this.bytesPerSecond * BURST_SECONDS);
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
    this.tokens = Math.min(this.capacity(), this.tokens + ((now - this.last) / 1000) * this.bytesPerSecond);
    this.last = now;
  }
}
