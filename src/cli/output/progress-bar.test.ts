import { test } from "node:test";
import assert from "node:assert/strict";
import { ProgressBar } from "./progress-bar.js";

function sink(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, out: { isTTY, write: (t: string) => writes.push(t) } };
}

test("ProgressBar redraws one line on a TTY with percent and ETA", () => {
  const { writes, out } = sink(true);
  const bar = new ProgressBar(out, { width: 10 });
  bar.update(42, 75, "web-1");
  bar.done();
  assert.equal(writes[0], "\r\x1b[2K[####------]  42% ETA 1m 15s  web-1");
  assert.equal(writes[1], "\n");
});

test("ProgressBar prints a plain line every interval on a non-TTY, and the final one", () => {
  const { writes, out } = sink(false);
  let now = 0;
  const bar = new ProgressBar(out, { width: 4, intervalMs: 5000, now: () => now });
  bar.update(10);
  now = 1000;
  bar.update(20);
  now = 6000;
  bar.update(30);
  now = 6500;
  bar.update(100);
  bar.done();
  assert.deepEqual(writes, ["[----]  10%\n", "[#---]  30%\n", "[####] 100%\n"]);
});
