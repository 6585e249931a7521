/**
 * Seeded generators for the retention tests: valid policies of any scale (seconds to a
 * year), PIT series shaped like the replicator's (bursts at one PIT a second, idle gaps,
 * days long), optional clock skew, and pinned seqs (branch bases, named snapshots). Every
 * value comes from one seed so that a failing case can be replayed.
 */
import type { Pit } from "../staging-store.js";
import { rng } from "../layered/test-support.js";
import {
  DEFAULT_RETENTION_POLICY,
  MAX_RETENTION_SECONDS,
  MIN_RETENTION_SECONDS,
  retentionReachSeconds,
  type RetentionPolicy,
  type RetentionTier,
} from "./retention-policy.js";

export class Random {
  readonly #next: () => number;

  constructor(readonly seed: number) {
    // Spread small consecutive seeds apart; xorshift32 mixes slowly from close states.
    this.#next = rng(Math.imul(seed ^ 0x5bd1e995, 2654435761) ^ (seed >>> 7));
    for (let i = 0; i < 8; i++) this.#next();
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.#next();
  }

  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.#next() * (hi - lo + 1));
  }

  /** Integer in [lo, hi] with a uniform logarithm: small and large values both come up. */
  logInt(lo: number, hi: number): number {
    const a = Math.log(Math.max(lo, 1));
    const b = Math.log(Math.max(hi, 1));
    return Math.min(hi, Math.max(lo, Math.round(Math.exp(a + (b - a) * this.#next()))));
  }

  chance(p: number): boolean {
    return this.#next() < p;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.#next() * items.length)];
    if (item === undefined) throw new Error("pick from an empty list");
    return item;
  }
}

/** A valid policy: sometimes the default, otherwise random windows and nesting intervals. */
export function randomPolicy(r: Random): RetentionPolicy {
  if (r.chance(0.1)) return DEFAULT_RETENTION_POLICY;
  const keepAllSeconds = r.chance(0.15) ? 0 : r.logInt(1, r.pick([60, 3600, 2 * 86_400]));
  const tiers: RetentionTier[] = [];
  const count = r.int(0, 5);
  let every = r.pick([1, 2, 5, 10, 30, 60, 300, 600, 900, 3600, r.logInt(1, 7200)]);
  let end = keepAllSeconds;
  for (let i = 0; i < count; i++) {
    if (i > 0) every *= r.pick([2, 3, 4, 6, 10, 12, 24, 60]);
    const forSeconds = end + every * r.logInt(1, 100);
    if (forSeconds > MAX_RETENTION_SECONDS) break;
    tiers.push({ everySeconds: every, forSeconds });
    end = forSeconds;
  }
  if (tiers.length === 0) return { keepAllSeconds: Math.max(keepAllSeconds, MIN_RETENTION_SECONDS), tiers };
  const last = tiers.at(-1);
  if (last !== undefined && last.forSeconds < MIN_RETENTION_SECONDS) {
    tiers[tiers.length - 1] = { ...last, forSeconds: MIN_RETENTION_SECONDS + last.everySeconds };
  }
  return { keepAllSeconds, tiers };
}

export interface PitSeries {
  readonly pits: Pit[];
  /** True when times were perturbed out of seq order (clock skew). */
  readonly skewed: boolean;
}

/**
 * PITs oldest first, ending near `end` (ms), spanning about `spanSeconds`: bursts of one
 * PIT a second (sometimes slower), idle gaps, at most `maxPits`. Usually laid out backwards
 * from `end`, so that a capped series is dense at its recent end; sometimes forwards from
 * the start, so that it is dense long ago. Seqs rise by 1 to 5.
 */
export function randomPitSeries(
  r: Random,
  end: number,
  spanSeconds: number,
  maxPits: number,
  skew = false,
): PitSeries {
  const start = end - spanSeconds * 1000;
  const backwards = r.chance(0.7);
  const direction = backwards ? -1 : 1;
  const inSpan = (t: number): boolean => t >= start && t <= end;
  const scale = Math.max(2, Math.floor(spanSeconds / 4));
  const times: number[] = [];
  let time = backwards ? end - r.int(0, 999) : start + r.int(0, 999);
  while (inSpan(time) && times.length < maxPits) {
    const burst = r.logInt(1, Math.min(7200, scale));
    const step = r.chance(0.7) ? 1000 : r.int(1000, 5000);
    for (let i = 0; i < burst && inSpan(time) && times.length < maxPits; i++) {
      times.push(time);
      if (r.chance(0.01)) times.push(time); // two PITs in one millisecond: ties go by seq
      time += direction * step;
    }
    time += direction * (r.logInt(1, scale) * 1000 + r.int(0, 999));
  }
  if (backwards) times.reverse();
  let seq = r.int(1, 1000);
  const pits = times.map((t): Pit => {
    const pit = { seq, time: t };
    seq += r.int(1, 5);
    return pit;
  });
  if (!skew || pits.length === 0) return { pits, skewed: false };
  const skewed = pits.map((p) =>
    r.chance(0.02) ? { ...p, time: p.time + r.pick([-1, 1]) * r.logInt(1, 86_400_000) } : p,
  );
  return { pits: skewed, skewed: true };
}

/** Branch bases at random PIT seqs, a few named snapshots, and now and then a seq no PIT has. */
export function randomPinned(r: Random, pits: readonly Pit[]): Set<number> {
  const pinned = new Set<number>();
  if (pits.length === 0) return pinned;
  const branches = r.int(0, 4);
  const snapshots = r.int(0, 3);
  for (let i = 0; i < branches + snapshots; i++) pinned.add(r.pick(pits).seq);
  if (r.chance(0.2)) pinned.add(r.int(0, 1_000_000_000));
  return pinned;
}

/** A span of history that reaches past the policy's reach about half the time. */
export function randomSpanSeconds(r: Random, policy: RetentionPolicy): number {
  return Math.max(10, Math.round(retentionReachSeconds(policy) * (0.3 + 1.2 * r.float())));
}
