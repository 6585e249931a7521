import { test } from "node:test";
import assert from "node:assert/strict";
import { RateLimiter, type Clock } from "./rate-limiter.js";

/** A clock that only moves when the limiter sleeps. */
function fakeClock(): Clock & { t: number } {
  const c = {
    t: 0,
    now: () => c.t,
    sleep: (ms: number) => {
      c.t += ms;
      return Promise.resolve();
    },
  };
  return c;
}

test("RateLimiter.take() holds the average rate to the limit and lets bursts of a tenth of a second through", async () => {
  const clock = fakeClock();
  const limiter = new RateLimiter(clock);
  limiter.setLimit(1_000_000); // 1 MB/s
  for (let i = 0; i < 50; i++) await limiter.take(200_000);
  // 10 MB at 1 MB/s: 10 s, less at most the bucket's tenth of a second of credit.
  assert.ok(clock.t >= 9_900 && clock.t <= 10_000, `took ${clock.t} ms`);
  clock.t += 5_000; // idle for 5 s: only a tenth of a second of credit accrues
  const before = clock.t;
  for (let i = 0; i < 10; i++) await limiter.take(200_000);
  assert.ok(
    clock.t - before >= 1_900 && clock.t - before <= 1_900 + 1,
    `took ${clock.t - before} ms after idling`,
  );
});

test("RateLimiter with limit 0 never waits", async () => {
  const clock = fakeClock();
  const limiter = new RateLimiter(clock);
  limiter.setLimit(0);
  for (let i = 0; i < 100; i++) await limiter.take(10_000_000);
  assert.equal(clock.t, 0);
});

test("RateLimiter holds a real 3-second transfer in 64 KiB slices within 5% of the limit", async (t) => {
  const limiter = new RateLimiter();
  const limit = 4_000_000;
  limiter.setLimit(limit);
  const slice = 64 * 1024;
  const started = performance.now();
  let bytes = 0;
  while (performance.now() - started < 3000) {
    await limiter.take(slice);
    bytes += slice;
  }
  const seconds = (performance.now() - started) / 1000;
  const rate = bytes / seconds;
  // 5%, plus one slice over the 3 s (the bucket starts empty: no burst).
  const slack = slice / seconds;
  t.diagnostic(`${Math.round(rate)} bytes/s against a limit of ${limit}`);
  assert.ok(rate <= limit * 1.05 + slack, `${Math.round(rate)} bytes/s is above ${limit} + 5%`);
  assert.ok(rate >= limit * 0.95 - slack, `${Math.round(rate)} bytes/s is below ${limit} - 5%`);
});
