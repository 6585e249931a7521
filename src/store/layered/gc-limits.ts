/**
 * The rule garbage collection follows: which block versions some readable seq still sees.
 * Above the horizon every seq is readable; at or below it only the kept PITs and pinned
 * branch bases (and the base seq and head, which need no version of their own kept).
 */

export interface GcLimits {
  /** The newest dropped PIT: seqs above it are all readable. */
  readonly horizon: number;
  /** Sorted seqs that stay readable below the horizon. */
  readonly readPoints: readonly number[];
}

/** True when some readable seq sees the version at `seq` whose successor is at `next`. */
export function versionNeeded(seq: number, next: number, gc: GcLimits): boolean {
  // The version is what seqs in [seq, next) read; any of them above the horizon is readable.
  if (next >= gc.horizon + 2) return true;
  const r = lowerBound(gc.readPoints, seq);
  return r < gc.readPoints.length && (gc.readPoints[r] ?? Infinity) < next;
}

/** First index of `sorted` whose value is >= `value`. */
export function lowerBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] ?? 0) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
