import { test } from "node:test";
import assert from "node:assert/strict";
import { UserError } from "../../common/errors.js";
import {
  DEFAULT_RETENTION_POLICY,
  MAX_RETENTION_SECONDS,
  parseRetentionPolicy,
  retentionReachSeconds,
} from "./retention-policy.js";
import { Random, randomPolicy } from "./random-retention.js";

const DAY = 86_400;

function rejects(value: unknown, message: RegExp): void {
  assert.throws(
    () => parseRetentionPolicy(value, "/retention"),
    (err: unknown) => err instanceof UserError && err.status === 400 && message.test(err.message),
    `${JSON.stringify(value)} should fail with ${String(message)}`,
  );
}

test("DEFAULT_RETENTION_POLICY is valid and reaches 30 days", () => {
  assert.deepEqual(parseRetentionPolicy(DEFAULT_RETENTION_POLICY), DEFAULT_RETENTION_POLICY);
  assert.equal(retentionReachSeconds(DEFAULT_RETENTION_POLICY), 30 * DAY);
  assert.equal(retentionReachSeconds({ keepAllSeconds: 7200, tiers: [] }), 7200);
});

test("parseRetentionPolicy() returns a fresh copy and accepts the limits", () => {
  const input = { keepAllSeconds: 0, tiers: [{ everySeconds: 1, forSeconds: 60 }] };
  const parsed = parseRetentionPolicy(input);
  assert.deepEqual(parsed, input);
  assert.notEqual(parsed.tiers, input.tiers);
  parseRetentionPolicy({ keepAllSeconds: 60, tiers: [] });
  parseRetentionPolicy({ keepAllSeconds: MAX_RETENTION_SECONDS, tiers: [] });
  parseRetentionPolicy({ keepAllSeconds: 3600, tiers: [{ everySeconds: DAY, forSeconds: 365 * DAY }] });
  parseRetentionPolicy({
    keepAllSeconds: 0,
    tiers: Array.from({ length: 8 }, (_, i) => ({ everySeconds: 2 ** i, forSeconds: 2 ** (i + 1) * 60 })),
  });
});

test("parseRetentionPolicy() accepts every policy the random generator makes", () => {
  for (let seed = 1; seed <= 500; seed++) parseRetentionPolicy(randomPolicy(new Random(seed)));
});

test("parseRetentionPolicy() rejects hostile shapes, naming the field", () => {
  rejects(null, /^Invalid retention policy: \/retention must be an object/);
  rejects([], /\/retention must be an object/);
  rejects("all:1h,10m:24h", /\/retention must be an object/);
  rejects(3600, /\/retention must be an object/);
  rejects({}, /\/retention\/keepAllSeconds must be a whole number of seconds: got undefined/);
  rejects({ keepAllSeconds: 3600 }, /\/retention\/tiers must be an array/);
  rejects({ keepAllSeconds: 3600, tiers: {} }, /\/retention\/tiers must be an array/);
  rejects({ keepAllSeconds: 3600, tiers: [], extra: 1 }, /\/retention\/extra is not a known field/);
  rejects(JSON.parse('{"keepAllSeconds":3600,"tiers":[],"__proto__":{"x":1}}'), /\/__proto__ is not a known/);
  rejects({ keepAllSeconds: 3600, tiers: [null] }, /\/retention\/tiers\/0 must be an object/);
  rejects({ keepAllSeconds: 3600, tiers: [[600, DAY]] }, /\/retention\/tiers\/0 must be an object/);
  rejects(
    { keepAllSeconds: 3600, tiers: [{ everySeconds: 600, forSeconds: DAY, keep: true }] },
    /\/retention\/tiers\/0\/keep is not a known field/,
  );
  rejects(
    { keepAllSeconds: 3600, tiers: new Array(100_000).fill({ everySeconds: 1, forSeconds: 1 }) },
    /\/retention\/tiers must have at most 8 tiers: got 100000/,
  );
});

test("parseRetentionPolicy() rejects bad numbers, naming the field and the value", () => {
  const tier = (everySeconds: unknown, forSeconds: unknown): unknown => ({
    keepAllSeconds: 3600,
    tiers: [{ everySeconds, forSeconds }],
  });
  rejects(
    { keepAllSeconds: -1, tiers: [] },
    /\/retention\/keepAllSeconds must be between 0 and 31536000.*got -1/,
  );
  rejects(
    { keepAllSeconds: Number.NaN, tiers: [] },
    /keepAllSeconds must be a whole number of seconds: got null/,
  );
  rejects({ keepAllSeconds: Infinity, tiers: [] }, /keepAllSeconds must be a whole number/);
  rejects({ keepAllSeconds: 1.5, tiers: [] }, /keepAllSeconds must be a whole number of seconds: got 1.5/);
  rejects(
    { keepAllSeconds: "3600", tiers: [] },
    /keepAllSeconds must be a whole number of seconds: got "3600"/,
  );
  rejects({ keepAllSeconds: 2 ** 60, tiers: [] }, /keepAllSeconds must be a whole number/);
  rejects({ keepAllSeconds: 366 * DAY, tiers: [] }, /keepAllSeconds must be between 0 and 31536000/);
  rejects(tier(0, DAY), /\/retention\/tiers\/0\/everySeconds must be between 1 and 31536000.*got 0/);
  rejects(tier(-600, DAY), /\/tiers\/0\/everySeconds must be between 1/);
  rejects(tier(600, "1d"), /\/tiers\/0\/forSeconds must be a whole number of seconds: got "1d"/);
  rejects(tier(600, true), /\/tiers\/0\/forSeconds must be a whole number/);
  rejects(tier(600, 366 * DAY), /\/tiers\/0\/forSeconds must be between 1 and 31536000.*got 31622400/);
});

test("parseRetentionPolicy() rejects tiers that do not nest, widen or fit", () => {
  const policy = (keepAllSeconds: number, ...tiers: [number, number][]): unknown => ({
    keepAllSeconds,
    tiers: tiers.map(([everySeconds, forSeconds]) => ({ everySeconds, forSeconds })),
  });
  rejects(
    policy(3600, [600, DAY], [600, 7 * DAY]),
    /\/retention\/tiers\/1\/everySeconds must be longer than 600, the interval of the tier before it: got 600/,
  );
  rejects(policy(3600, [600, DAY], [300, 7 * DAY]), /\/tiers\/1\/everySeconds must be longer than 600/);
  rejects(
    policy(3600, [600, DAY], [900, 7 * DAY]),
    /\/retention\/tiers\/1\/everySeconds must be a multiple of 600, the interval of the tier before it, so that buckets nest: got 900/,
  );
  rejects(
    policy(3600, [600, 1800]),
    /\/retention\/tiers\/0\/forSeconds must be at least 4200: the window before it ends at 3600 .*got 1800/,
  );
  rejects(policy(3600, [600, 3600]), /\/tiers\/0\/forSeconds must be at least 4200/);
  rejects(policy(3600, [600, DAY], [3600, DAY]), /\/tiers\/1\/forSeconds must be at least 90000/);
  // A tier narrower than its own interval would let thinning depend on when it ran.
  rejects(policy(3600, [600, DAY], [DAY, DAY + 3600]), /\/tiers\/1\/forSeconds must be at least 172800/);
  rejects(policy(0, [DAY, 300 * DAY], [7 * DAY, 366 * DAY]), /\/tiers\/1\/forSeconds must be between 1 and/);
  rejects(policy(59, ...[]), /\/retention\/keepAllSeconds must be at least 60, so that the policy keeps/);
  rejects(policy(0, [1, 30]), /\/retention\/tiers\/0\/forSeconds must be at least 60.*got 30/);
  rejects(
    policy(0, ...Array.from({ length: 9 }, (_, i): [number, number] => [2 ** i, 2 ** (i + 1) * 60])),
    /\/retention\/tiers must have at most 8 tiers: got 9/,
  );
});

test("parseRetentionPolicy() names fields from the root when no prefix is given", () => {
  assert.throws(
    () => parseRetentionPolicy({ keepAllSeconds: -5, tiers: [] }),
    /Invalid retention policy: \/keepAllSeconds /,
  );
  assert.throws(() => parseRetentionPolicy(undefined), /Invalid retention policy: \/ must be an object/);
});
