import { test } from "node:test";
import assert from "node:assert/strict";
import { RateMeter } from "./rate-meter.js";

test("RateMeter.rate() is the counter's growth per second over the window", () => {
  const m = new RateMeter(5000);
  assert.equal(m.rate(0), 0);
  for (let t = 0; t <= 10_000; t += 500) m.record(t * 1000, t); // 1,000,000 per second
  assert.equal(m.rate(10_000), 1_000_000);
});

test("RateMeter.rate() falls when the counter stops growing, and starts over when it goes back", () => {
  const m = new RateMeter(5000);
  m.record(0, 0);
  m.record(2_000_000, 2000);
  assert.equal(m.rate(2000), 1_000_000);
  assert.equal(m.rate(4000), 500_000, "no growth for 2 s halves the rate");
  assert.equal(m.rate(5001), 0, "the first sample left the window");
  m.record(100, 6000); // the counter was reset
  assert.equal(m.rate(6000), 0);
  m.record(2100, 7000);
  assert.equal(m.rate(7000), 2000);
});

test("RateMeter.restart() measures from now, not from before a pause", () => {
  const m = new RateMeter(10_000);
  m.record(0, 0);
  m.record(1_000_000, 1000);
  m.restart(1_000_000, 6000); // idle for 5 s
  m.record(3_000_000, 7000);
  assert.equal(m.rate(7000), 2_000_000);
});
