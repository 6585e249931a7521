import { test } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { InFlight } from "./in-flight.js";

test("InFlight.add() never lets more than the limit run at once", async () => {
  const window = new InFlight(3);
  let running = 0;
  let most = 0;
  const task = async (ms: number): Promise<void> => {
    running++;
    most = Math.max(most, running);
    await sleep(ms);
    running--;
  };
  for (let i = 0; i < 10; i++) await window.add(task(i % 3));
  await window.drain();
  assert.equal(most, 3);
  assert.equal(running, 0);
});

test("InFlight.drain() rethrows the first failure, and add() refuses more work after it", async () => {
  const window = new InFlight(4);
  const fail = async (ms: number, message: string): Promise<void> => {
    await sleep(ms);
    throw new Error(message);
  };
  await window.add(fail(5, "first"));
  await window.add(fail(20, "second"));
  await assert.rejects(window.drain(), /first/);
  await assert.rejects(window.add(Promise.resolve()), /first/);
});
