/**
 * Latency summaries for bench figures: nearest-rank percentiles over a sample, so a p99
 * is a value that was actually observed, never an interpolation between two.
 */

export interface Summary {
  readonly count: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** The nearest-rank `p`th percentile (0 < p <= 100) of `values`; NaN for an empty sample. */
export function percentile(values: readonly number[], p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`Percentile ${p} is out of range: use 0 < p <= 100`);
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil((p / 100) * sorted.length) - 1] ?? Number.NaN;
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) {
    return { count: 0, min: NaN, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  }
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number): number => sorted[Math.ceil((p / 100) * sorted.length) - 1] ?? NaN;
  return {
    count: sorted.length,
    min: sorted[0] ?? NaN,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: sorted[sorted.length - 1] ?? NaN,
    mean: sorted.reduce((sum, v) => sum + v, 0) / sorted.length,
  };
}
