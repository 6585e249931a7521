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

test("RateLimiter.take() holds the average rate to the limit and lets bursts of one second through", async () => {
  const clock = fakeClock();
  const limiter = new RateLimiter(clock);
  limiter.setLimit(1_000_000); // 1 MB/s
  for (let i = 0; i < 50; i++) await limiter.take(200_000);
  // 10 MB at 1 MB/s: 10 s, less the first second's worth of credit the bucket may not have.
  assert.ok(clock.t >= 9_000 && clock.t <= 10_000, `took ${clock.t} ms`);
  clock.t += 5_000; // idle for 5 s: only one second of credit accrues
  const before = clock.t;
  for (let i = 0; i < 10; i++) await limiter.take(200_000);
  assert.ok(
    clock.t - before >= 1_000 && clock.t - before <= 1_000 + 1,
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
