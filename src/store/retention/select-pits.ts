/**
 * Which PITs of a timeline a retention policy keeps at a given moment: a pure function of
 * the PITs, the policy, the clock and the pinned seqs, so that what a retention pass drops
 * can be checked and replayed. Ages are `now - pit.time` in milliseconds; windows are
 * half-open ([start, end) in age).
 *
 * - Pinned seqs (branch bases, named snapshots; the caller passes them) are always kept.
 *   A named snapshot is not a kind of PIT: it is a PIT whose seq the caller pins until the
 *   operator deletes the snapshot; then the policy applies to it like any other PIT.
 *   Pinning never changes the fate of another PIT.
 * - A PIT whose time is after `now` (clock skew) or not a finite number is kept and listed
 *   in `future` for the caller to report.
 * - A PIT younger than the keep-all window is kept.
 * - Otherwise tier i applies to ages in [end of the window before it, forSeconds). Tier
 *   buckets are aligned to the epoch (bucket = floor(time / every)), and the PIT kept in a
 *   bucket is its OLDEST (by time, then seq) among all the given PITs in that bucket.
 *   Because each interval is a multiple of the one before, a fine bucket lies inside one
 *   coarse bucket, and the oldest of the coarse bucket is the oldest of its fine bucket too:
 *   the PIT a coarse tier wants was already kept by every finer tier. So thinning is stable:
 *   running it at t1 and again at t2 keeps exactly what one run at t2 keeps, and a dropped
 *   PIT is never wanted again.
 * - A PIT at least as old as the reach (the last tier's forSeconds; with no tiers,
 *   keepAllSeconds) is dropped. A last-tier bucket that straddles the reach keeps its
 *   oldest PIT while that PIT is within reach; once it is not, the bucket's younger PITs
 *   stay dropped (they were never its chosen one). With the default policy and steady
 *   writes the oldest daily PIT is 29 to 30 days old.
 *
 * Stability also needs each tier's window to span at least one of its intervals (policy
 * validation enforces it). Without that, one bucket could hold a PIT still in a finer tier
 * and an older one already past the next tier, and which of them survives would depend on
 * when thinning ran. Stability holds for a fixed pinned set; a pin that is removed hands
 * its PIT back to the policy.
 *
 * The newest PIT gets no special treatment: a timeline idle for longer than the reach
 * loses its unpinned PITs (the head, lastSeq, stays readable). A caller that wants one
 * launchable PIT always should pin the newest seq.
 */
import type { Pit } from "../staging-store.js";
import { parseRetentionPolicy, type RetentionPolicy } from "./retention-policy.js";

export interface PitSelection {
  /** In input order. */
  readonly keep: Pit[];
  /** In input order. keep and drop partition the input. */
  readonly drop: Pit[];
  /** Kept PITs with a time after `now` or not finite (clock skew): report them. */
  readonly future: Pit[];
}

function bucket(time: number, everyMs: number): number {
  return Math.floor(time / everyMs);
}

/**
 * Splits `pits` into those `policy` keeps at `now` (ms since the epoch) and those it drops.
 * Throws UserError for an invalid policy, RangeError for a `now` that is not finite.
 */
export function selectPits(
  pits: readonly Pit[],
  policy: RetentionPolicy,
  now: number,
  pinned: ReadonlySet<number>,
): PitSelection {
  if (!Number.isFinite(now)) throw new RangeError(`selectPits needs a finite now: got ${now}`);
  const checked = parseRetentionPolicy(policy);
  const keepAllMs = checked.keepAllSeconds * 1000;
  const tiers = checked.tiers.map((t) => ({ everyMs: t.everySeconds * 1000, forMs: t.forSeconds * 1000 }));

  const kept = new Array<boolean>(pits.length).fill(false);
  const future: Pit[] = [];
  const timed: number[] = [];
  for (const [i, pit] of pits.entries()) {
    if (!Number.isFinite(pit.time) || pit.time > now) {
      kept[i] = true;
      future.push(pit);
    } else {
      timed.push(i);
    }
    if (pinned.has(pit.seq)) kept[i] = true;
  }

  // Oldest first; in this order a PIT is the oldest of its bucket iff the one before it
  // is in another bucket. Future PITs sort after every other one, so leaving them out
  // changes no bucket's oldest.
  const at = (i: number | undefined): Pit | undefined => (i === undefined ? undefined : pits[i]);
  timed.sort((a, b) => {
    const pa = pits[a] as Pit;
    const pb = pits[b] as Pit;
    return pa.time - pb.time || pa.seq - pb.seq;
  });
  for (const [k, i] of timed.entries()) {
    const pit = pits[i] as Pit;
    const age = now - pit.time;
    if (age < keepAllMs) {
      kept[i] = true;
      continue;
    }
    const tier = tiers.find((t) => age < t.forMs);
    if (tier === undefined) continue; // beyond the reach
    const previous = at(timed[k - 1]);
    if (previous === undefined || bucket(previous.time, tier.everyMs) !== bucket(pit.time, tier.everyMs)) {
      kept[i] = true;
    }
  }

  const keep: Pit[] = [];
  const drop: Pit[] = [];
  for (const [i, pit] of pits.entries()) (kept[i] === true ? keep : drop).push(pit);
  return { keep, drop, future };
}
