/**
 * Per-write replication lag (from the hook seeing a write to the standby acknowledging it
 * durable), kept for the newest `capacity` writes: what the RPO figures are read from.
 */
export class LagSamples {
  private readonly ring: Float64Array;
  private next = 0;
  private count = 0;

  constructor(capacity = 65_536) {
    this.ring = new Float64Array(capacity);
  }

  add(ms: number): void {
    this.ring[this.next] = ms;
    this.next = (this.next + 1) % this.ring.length;
    this.count = Math.min(this.count + 1, this.ring.length);
  }

  /** Forgets every sample (a benchmark starts its window). */
  reset(): void {
    this.next = 0;
    this.count = 0;
  }

  get size(): number {
    return this.count;
  }

  /** The p-th percentile (0..100) in ms, nearest rank; null without samples. */
  percentile(p: number): number | null {
    if (this.count === 0) return null;
    const sorted = this.ring.slice(0, this.count).sort();
    const rank = Math.min(this.count - 1, Math.max(0, Math.ceil((p / 100) * this.count) - 1));
    return sorted[rank] ?? null;
  }
}
