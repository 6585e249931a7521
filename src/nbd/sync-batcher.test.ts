import { test } from "node:test";
import assert from "node:assert/strict";
import { SyncBatcher } from "./sync-batcher.js";

test("SyncBatcher.sync() never settles a caller with a sync that started before its call", async () => {
  const started: number[] = [];
  const finish: (() => void)[] = [];
  const batcher = new SyncBatcher(
    () =>
      new Promise<void>((resolve) => {
        started.push(Date.now());
        finish.push(resolve);
      }),
  );
  const first = batcher.sync();
  let secondDone = false;
  let thirdDone = false;
  // Both arrive while the first sync runs: they share the next one.
  const second = batcher.sync().then(() => (secondDone = true));
  const third = batcher.sync().then(() => (thirdDone = true));
  assert.equal(started.length, 1);
  finish[0]!();
  await first;
  await new Promise((r) => setImmediate(r));
  assert.equal(secondDone, false, "the first sync began before the second call");
  assert.equal(started.length, 2);
  finish[1]!();
  await Promise.all([second, third]);
  assert.ok(secondDone && thirdDone);
  assert.equal(started.length, 2);
  await batcher.idle();
});
