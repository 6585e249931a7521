import { test } from "node:test";
import assert from "node:assert/strict";
import { RangeLocks } from "./range-locks.js";

test("RangeLocks.acquire() grants disjoint ranges at once and queues overlapping ones in order", async () => {
  const locks = new RangeLocks();
  const a = locks.acquire(0, 100);
  const b = locks.acquire(100, 100);
  assert.ok(!(a instanceof Promise) && !(b instanceof Promise));
  const order: string[] = [];
  const c = locks.acquire(50, 100); // overlaps a and b
  const d = locks.acquire(120, 10); // overlaps b and c
  assert.ok(c instanceof Promise && d instanceof Promise);
  void c.then((l) => {
    order.push("c");
    setTimeout(() => locks.release(l), 5);
  });
  void d.then((l) => {
    order.push("d");
    locks.release(l);
  });
  locks.release(a);
  await new Promise((r) => setTimeout(r, 1));
  assert.deepEqual(order, []);
  locks.release(b);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(order, ["c", "d"]);
  assert.equal(locks.size, 0);
});
