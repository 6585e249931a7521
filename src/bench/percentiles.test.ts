import { test } from "node:test";
import assert from "node:assert/strict";
import { percentile, summarize } from "./percentiles.js";

test("percentile() takes the nearest rank of the sorted sample", () => {
  const values = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
  assert.equal(percentile(values, 50), 5);
  assert.equal(percentile(values, 90), 9);
  assert.equal(percentile(values, 99), 10);
  assert.equal(percentile(values, 100), 10);
  assert.equal(percentile([7], 1), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
  assert.throws(() => percentile(values, 0), RangeError);
});

test("summarize() reports count, extremes, mean and percentiles without changing its input", () => {
  const values = Array.from({ length: 100 }, (_v, i) => 100 - i);
  const s = summarize(values);
  assert.deepEqual(s, { count: 100, min: 1, p50: 50, p90: 90, p99: 99, max: 100, mean: 50.5 });
  assert.equal(values[0], 100);
  assert.equal(summarize([]).count, 0);
});
