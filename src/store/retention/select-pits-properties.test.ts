/**
 * Property tests for selectPits over seeded random cases: random valid policies, PIT series
 * with bursts, idle gaps and clock skew, random pinned seqs. A failure names its seed;
 * `LIFEBOAT_RETENTION_SEED=<seed> node scripts/run-tests.js select-pits-properties` replays
 * exactly that case. Without the variable, fixed seeds run first, then random ones.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomInt } from "node:crypto";
import type { Pit } from "../staging-store.js";
import { retentionReachSeconds, type RetentionPolicy } from "./retention-policy.js";
import { formatRetentionPolicy } from "./retention-text.js";
import { selectPits } from "./select-pits.js";
import {
  Random,
  randomPinned,
  randomPitSeries,
  randomPolicy,
  randomSpanSeconds,
} from "./random-retention.js";

const FIXED_CASES = 150;
const RANDOM_CASES = 100;
const MAX_PITS = 12_000;

function seqs(pits: readonly Pit[]): number[] {
  return pits.map((p) => p.seq).sort((a, b) => a - b);
}

function bucket(time: number, everyMs: number): number {
  return Math.floor(time / everyMs);
}

/** Tier windows in ms: tier i covers ages [from, to). */
function windows(policy: RetentionPolicy): { everyMs: number; fromMs: number; toMs: number }[] {
  let from = policy.keepAllSeconds * 1000;
  return policy.tiers.map((t) => {
    const w = { everyMs: t.everySeconds * 1000, fromMs: from, toMs: t.forSeconds * 1000 };
    from = w.toMs;
    return w;
  });
}

/** (a), (b), (c), (e), (f): what one selection at `now` must satisfy. */
function checkSelection(
  pits: readonly Pit[],
  policy: RetentionPolicy,
  now: number,
  pinned: ReadonlySet<number>,
): void {
  const { keep, drop, future } = selectPits(pits, policy, now, pinned);
  // (b) keep and drop partition the input, each in input order.
  assert.equal(keep.length + drop.length, pits.length, "keep + drop = input");
  const kept = new Set(keep);
  const dropped = new Set(drop);
  for (const p of pits) assert.ok(kept.has(p) !== dropped.has(p), `seq ${p.seq} in exactly one side`);
  assert.deepEqual(
    keep,
    pits.filter((p) => kept.has(p)),
    "keep is in input order",
  );
  // (a) Pinned seqs are kept; future PITs are kept and reported.
  for (const p of pits) if (pinned.has(p.seq)) assert.ok(kept.has(p), `pinned seq ${p.seq} kept`);
  const expectedFuture = pits.filter((p) => !(p.time <= now));
  assert.deepEqual(future, expectedFuture, "future PITs reported");
  for (const p of future) assert.ok(kept.has(p), `future seq ${p.seq} kept`);

  const reachMs = retentionReachSeconds(policy) * 1000;
  const keepAllMs = policy.keepAllSeconds * 1000;
  const past = pits.filter((p) => p.time <= now);
  for (const p of past) {
    const age = now - p.time;
    // Keep-all window.
    if (age < keepAllMs) assert.ok(kept.has(p), `seq ${p.seq} (age ${age} ms) inside keep-all kept`);
    // (e) Nothing older than the reach is kept unless pinned.
    if (kept.has(p) && !pinned.has(p.seq)) {
      assert.ok(age < reachMs, `seq ${p.seq} (age ${age} ms) beyond reach ${reachMs} ms kept`);
    }
  }
  for (const [i, w] of windows(policy).entries()) {
    const byBucket = new Map<number, Pit[]>();
    for (const p of past) {
      const b = bucket(p.time, w.everyMs);
      const list = byBucket.get(b);
      if (list === undefined) byBucket.set(b, [p]);
      else list.push(p);
    }
    for (const [b, members] of byBucket) {
      const startAge = now - b * w.everyMs;
      const youngestAge = now - (b * w.everyMs + w.everyMs - 1);
      // (c) A bucket wholly inside tier i's window keeps at least one of its PITs.
      if (startAge < w.toMs && youngestAge >= w.fromMs) {
        assert.ok(
          members.some((p) => kept.has(p)),
          `tier ${i} bucket ${b} (${members.length} PITs, ages ${youngestAge}..${startAge} ms) keeps one`,
        );
      }
      // (c) More precisely: a bucket's oldest PIT is kept while its age is in the window.
      const oldest = members.reduce((a, c) =>
        c.time < a.time || (c.time === a.time && c.seq < a.seq) ? c : a,
      );
      const oldestAge = now - oldest.time;
      if (oldestAge >= w.fromMs && oldestAge < w.toMs) {
        assert.ok(kept.has(oldest), `tier ${i} bucket ${b} keeps its oldest, seq ${oldest.seq}`);
      }
      // (f) Thinning thins: of the bucket's unpinned PITs whose age is in tier i's window,
      // at most one is kept, and it is the bucket's oldest.
      const inTier = members.filter((p) => {
        const age = now - p.time;
        return age >= w.fromMs && age < w.toMs && !pinned.has(p.seq) && kept.has(p);
      });
      assert.ok(inTier.length <= 1, `tier ${i} bucket ${b} keeps ${inTier.length} unpinned PITs`);
      if (inTier[0] !== undefined) assert.equal(inTier[0], oldest, `tier ${i} bucket ${b} keeps its oldest`);
    }
  }
  // Pinning changes the fate of no other PIT.
  const unpinned = new Set(selectPits(pits, policy, now, new Set()).keep);
  assert.deepEqual(
    seqs(keep),
    seqs(pits.filter((p) => pinned.has(p.seq) || unpinned.has(p))),
    "pins add to the unpinned selection and change nothing else",
  );
}

/**
 * Mostly after the last PIT; sometimes before it, so that some PITs are in the future;
 * sometimes exactly on (or 1 ms off) a window's end for some PIT, where off-by-one
 * mistakes live.
 */
function randomNow(r: Random, policy: RetentionPolicy, pits: readonly Pit[], end: number): number {
  const reach = retentionReachSeconds(policy);
  const choice = r.float();
  if (choice < 0.15) return end - r.logInt(1, reach) * 1000;
  if (choice < 0.4 && pits.length > 0) {
    const edges = [policy.keepAllSeconds, ...policy.tiers.map((t) => t.forSeconds)];
    return r.pick(pits).time + r.pick(edges) * 1000 + r.pick([-1, 0, 0, 1]);
  }
  return end + r.logInt(0, reach) * 1000;
}

/** One case: properties at `now`, and stability (d) against later runs. */
function runCase(seed: number, info: { description: string }): void {
  const r = new Random(seed);
  const policy = randomPolicy(r);
  const reach = retentionReachSeconds(policy);
  const end = Date.UTC(2020, 0, 1) + r.int(0, 10 * 365 * 86_400) * 1000 + r.int(0, 999);
  const skew = r.chance(0.15);
  const { pits, skewed } = randomPitSeries(r, end, randomSpanSeconds(r, policy), r.logInt(1, MAX_PITS), skew);
  const pinned = randomPinned(r, pits);
  const now = randomNow(r, policy, pits, end);
  info.description = `(policy ${formatRetentionPolicy(policy)}, ${pits.length} PITs${skewed ? " (skewed)" : ""}, ${pinned.size} pinned, now ${new Date(now).toISOString()})`;

  checkSelection(pits, policy, now, pinned);

  // (d) Thinning at t1 then at t2 keeps what one run at t2 keeps; nothing comes back.
  const t1 = now;
  const edge = randomNow(r, policy, pits, end);
  const t2 = edge > t1 ? edge : t1 + r.logInt(1, Math.ceil(reach * 1.2)) * 1000 + r.int(0, 999);
  const first = selectPits(pits, policy, t1, pinned);
  const again = selectPits(first.keep, policy, t2, pinned);
  const once = selectPits(pits, policy, t2, pinned);
  assert.deepEqual(
    seqs(again.keep),
    seqs(once.keep),
    `thinning at t1 then t2 = at t2 (t2 - t1 = ${t2 - t1} ms)`,
  );
  checkSelection(first.keep, policy, t2, pinned);

  // (d) with arrivals: runs at random moments while PITs keep arriving (in time order),
  // against one run at the end over everything that arrived.
  if (!skewed && pits.length > 0) {
    const first = pits[0] as Pit;
    const last = pits.at(-1) as Pit;
    const runs = Array.from({ length: r.int(1, 6) }, () => r.int(first.time, last.time + reach * 1000)).sort(
      (a, b) => a - b,
    );
    let retained: Pit[] = [];
    let arrived = 0;
    for (const at of runs) {
      while (arrived < pits.length && (pits[arrived] as Pit).time <= at)
        retained.push(pits[arrived++] as Pit);
      retained = selectPits(retained, policy, at, pinned).keep;
    }
    const final = runs.at(-1) ?? last.time;
    assert.deepEqual(
      seqs(retained),
      seqs(selectPits(pits.slice(0, arrived), policy, final, pinned).keep),
      `${runs.length} runs while PITs arrive = one run at the end`,
    );
  }
}

function runSeeds(seeds: readonly number[]): void {
  for (const seed of seeds) {
    const info = { description: "" };
    try {
      runCase(seed, info);
    } catch (err) {
      throw new Error(
        `selectPits property failed for seed ${seed} ${info.description}: replay with ` +
          `LIFEBOAT_RETENTION_SEED=${seed} node scripts/run-tests.js select-pits-properties`,
        { cause: err },
      );
    }
  }
}

const replay = process.env["LIFEBOAT_RETENTION_SEED"];

if (replay !== undefined) {
  test(`selectPits() properties hold for seed ${replay}`, () => runSeeds([Number(replay)]));
} else {
  test(`selectPits() properties hold for ${FIXED_CASES} fixed seeds (1..${FIXED_CASES})`, () =>
    runSeeds(Array.from({ length: FIXED_CASES }, (_, i) => i + 1)));

  const base = randomInt(1_000_000, 2 ** 31 - RANDOM_CASES);
  test(`selectPits() properties hold for ${RANDOM_CASES} random seeds (${base}..${base + RANDOM_CASES - 1})`, () =>
    runSeeds(Array.from({ length: RANDOM_CASES }, (_, i) => base + i)));
}
