import { test } from "node:test";
import assert from "node:assert/strict";
import { UserError } from "../../common/errors.js";
import type { Pit } from "../staging-store.js";
import { DEFAULT_RETENTION_POLICY, type RetentionPolicy } from "./retention-policy.js";
import { parseRetentionText } from "./retention-text.js";
import { selectPits } from "./select-pits.js";

const NOW = Date.UTC(2026, 0, 31, 12, 0, 0);
const NONE = new Set<number>();
const S = 1000;
const DAY = 86_400 * S;

function iso(pit: Pit): string {
  return new Date(pit.time).toISOString().slice(0, 19);
}

/** One PIT a second for `seconds` seconds, ending at `end`, seqs counting up from `seq`. */
function everySecond(end: number, seconds: number, seq = 1): Pit[] {
  return Array.from({ length: seconds }, (_, i) => ({ seq: seq + i, time: end - (seconds - 1 - i) * S }));
}

test("selectPits() keeps the last hour whole and the oldest PIT of each 10-minute bucket before it", () => {
  const pits = everySecond(NOW, 7200);
  const { keep, drop, future } = selectPits(pits, DEFAULT_RETENTION_POLICY, NOW, NONE);
  const thinned = keep.filter((p) => NOW - p.time >= 3600 * S).map(iso);
  assert.deepEqual(thinned, [
    "2026-01-31T10:00:01",
    "2026-01-31T10:10:00",
    "2026-01-31T10:20:00",
    "2026-01-31T10:30:00",
    "2026-01-31T10:40:00",
    "2026-01-31T10:50:00",
    "2026-01-31T11:00:00", // aged out of keep-all a moment ago; the oldest of its bucket
  ]);
  assert.equal(keep.length, 3600 + 7);
  assert.equal(drop.length, 7200 - keep.length);
  assert.deepEqual(future, []);
});

test("selectPits() buckets are aligned to the epoch, not to now or to the first PIT", () => {
  const policy = parseRetentionText("all:0,1h:7d");
  const pits = [
    { seq: 1, time: Date.UTC(2026, 0, 30, 9, 59, 59) },
    { seq: 2, time: Date.UTC(2026, 0, 30, 10, 0, 0) },
    { seq: 3, time: Date.UTC(2026, 0, 30, 10, 30, 0) },
    { seq: 4, time: Date.UTC(2026, 0, 30, 10, 59, 59, 999) },
    { seq: 5, time: Date.UTC(2026, 0, 30, 11, 0, 0) },
  ];
  for (const now of [NOW, NOW + 17_123, NOW + 1_800_000]) {
    assert.deepEqual(
      selectPits(pits, policy, now, NONE).keep.map((p) => p.seq),
      [1, 2, 5],
    );
  }
});

test("selectPits() picks, as a PIT ages into coarser tiers, the one the finer tier already kept", () => {
  const pits = everySecond(NOW, 7200);
  let kept: Pit[] = pits;
  const keptAt = new Map<number, string[]>();
  for (const later of [0, 2 * 3600 * S, 2 * DAY, 8 * DAY, 29 * DAY]) {
    kept = selectPits(kept, DEFAULT_RETENTION_POLICY, NOW + later, NONE).keep;
    const once = selectPits(pits, DEFAULT_RETENTION_POLICY, NOW + later, NONE).keep;
    assert.deepEqual(kept, once, `later by ${later} ms`);
    keptAt.set(later, kept.map(iso));
  }
  // After two days the hourly tier keeps the oldest of each hour, which the 10-minute tier
  // had kept; after 8 days the daily tier keeps 10:00:01, still the day's oldest.
  const hourly = ["2026-01-31T10:00:01", "2026-01-31T11:00:00", "2026-01-31T12:00:00"];
  assert.deepEqual(keptAt.get(2 * DAY), hourly);
  assert.ok(hourly.every((t) => keptAt.get(2 * 3600 * S)?.includes(t)));
  assert.deepEqual(keptAt.get(8 * DAY), ["2026-01-31T10:00:01"]);
  assert.deepEqual(keptAt.get(29 * DAY), ["2026-01-31T10:00:01"]);
});

test("selectPits() drops PITs at the reach: nothing 30 days old survives the default policy", () => {
  // Two PITs a day, at 00:05 and 12:00, for 40 days before NOW (12:00).
  const pits: Pit[] = [];
  for (let d = 40; d >= 1; d--) {
    const midnight = NOW - d * DAY - 12 * 3600 * S;
    pits.push(
      { seq: pits.length + 1, time: midnight + 5 * 60 * S },
      { seq: pits.length + 2, time: midnight + 12 * 3600 * S },
    );
  }
  const { keep } = selectPits(pits, DEFAULT_RETENTION_POLICY, NOW, NONE);
  const oldest = Math.max(...keep.map((p) => (NOW - p.time) / DAY));
  assert.ok(oldest >= 29 && oldest < 30, `oldest kept is ${oldest} days old`);
  // 7 to 29 days back the daily tier keeps each day's oldest (00:05); 1 to 6 days back the
  // hourly tier keeps both.
  const daily = keep.filter((p) => NOW - p.time >= 7 * DAY);
  assert.equal(daily.length, 23);
  assert.ok(daily.every((p) => iso(p).endsWith("T00:05:00")));
  assert.equal(keep.length - daily.length, 12);
});

test("selectPits() windows are half-open: a PIT exactly keepAllSeconds or the reach old leaves", () => {
  const policy = parseRetentionText("all:1m,10s:2m");
  const now = NOW + 5 * S; // 12:00:05
  const pits = [
    { seq: 1, time: now - 120 * S }, // 11:58:05, alone in its 10 s bucket
    { seq: 2, time: now - 63 * S }, // 11:59:02, the oldest of its 10 s bucket
    { seq: 3, time: now - 60 * S }, // 11:59:05, same bucket
  ];
  assert.deepEqual(
    selectPits(pits, policy, now, NONE).keep.map((p) => p.seq),
    [2],
  );
  assert.deepEqual(
    selectPits(pits, policy, now - 1, NONE).keep.map((p) => p.seq),
    [1, 2, 3],
  );
});

test("selectPits() keeps pinned seqs whatever their age, and pins change nothing else", () => {
  const pits = [
    { seq: 10, time: NOW - 200 * DAY },
    { seq: 11, time: NOW - 31 * DAY },
    { seq: 12, time: NOW - 2 * DAY },
    { seq: 13, time: NOW - 2 * DAY + S },
  ];
  const pinned = new Set([10, 13, 99]);
  const { keep, drop } = selectPits(pits, DEFAULT_RETENTION_POLICY, NOW, pinned);
  assert.deepEqual(
    keep.map((p) => p.seq),
    [10, 12, 13],
  );
  assert.deepEqual(
    drop.map((p) => p.seq),
    [11],
  );
  assert.deepEqual(
    selectPits(pits, DEFAULT_RETENTION_POLICY, NOW, NONE).keep.map((p) => p.seq),
    [12],
  );
});

test("selectPits() keeps and reports PITs from the future or with no usable time", () => {
  const pits = [
    { seq: 1, time: NOW - 90 * DAY },
    { seq: 2, time: NOW + 5 * 60 * S }, // the clock was ahead when it was cut
    { seq: 3, time: Number.NaN },
    { seq: 4, time: NOW - 2 * DAY },
  ];
  const { keep, drop, future } = selectPits(pits, DEFAULT_RETENTION_POLICY, NOW, NONE);
  assert.deepEqual(
    keep.map((p) => p.seq),
    [2, 3, 4],
  );
  assert.deepEqual(
    drop.map((p) => p.seq),
    [1],
  );
  assert.deepEqual(
    future.map((p) => p.seq),
    [2, 3],
  );
});

test("selectPits() on an idle timeline drops its last PIT past the reach unless the caller pins it", () => {
  const pits = [{ seq: 7, time: NOW - 31 * DAY }];
  assert.deepEqual(selectPits(pits, DEFAULT_RETENTION_POLICY, NOW, NONE).keep, []);
  assert.deepEqual(selectPits(pits, DEFAULT_RETENTION_POLICY, NOW, new Set([7])).keep, pits);
});

test("selectPits() breaks time ties by seq and returns both sides in input order", () => {
  const policy = parseRetentionText("all:0,1m:10m");
  const t = NOW - 5 * 60 * S;
  const pits = [
    { seq: 9, time: t + 10 * S },
    { seq: 5, time: t },
    { seq: 4, time: t },
  ];
  const { keep, drop } = selectPits(pits, policy, NOW, NONE);
  assert.deepEqual(
    keep.map((p) => p.seq),
    [4],
  );
  assert.deepEqual(
    drop.map((p) => p.seq),
    [9, 5],
  );
  assert.deepEqual(selectPits([], policy, NOW, NONE), { keep: [], drop: [], future: [] });
});

test("selectPits() refuses an invalid policy or now", () => {
  const bad: RetentionPolicy = { keepAllSeconds: 3600, tiers: [{ everySeconds: 600, forSeconds: 3000 }] };
  assert.throws(() => selectPits([], bad, NOW, NONE), UserError);
  assert.throws(() => selectPits([], DEFAULT_RETENTION_POLICY, Number.NaN, NONE), RangeError);
});
