import { test } from "node:test";
import assert from "node:assert/strict";
import { formatBytes, formatDuration, parseDuration } from "./format.js";

test("formatBytes() uses binary units", () => {
  assert.equal(formatBytes(0), "0 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(10 * 1024 ** 3), "10 GiB");
});

test("formatDuration() is short and null-safe", () => {
  assert.equal(formatDuration(null), "-");
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(2.5), "2.5s");
  assert.equal(formatDuration(75), "1m 15s");
  assert.equal(formatDuration(3700), "1h 1m");
  assert.equal(formatDuration(90_000), "1d 1h");
});

test("parseDuration() reads 30m, 24h, 7d and plain seconds; rejects the rest", () => {
  assert.equal(parseDuration("30m"), 1800);
  assert.equal(parseDuration("24h"), 86_400);
  assert.equal(parseDuration("7d"), 604_800);
  assert.equal(parseDuration("90"), 90);
  assert.throws(() => parseDuration("1.5h"), /Invalid duration 1.5h/);
  assert.throws(() => parseDuration("soon"), /Invalid duration/);
});
