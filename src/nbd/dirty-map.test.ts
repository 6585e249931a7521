import { test } from "node:test";
import assert from "node:assert/strict";
import { DirtyMap } from "./dirty-map.js";
import { STATE_DIRTY } from "./protocol.js";

const K64 = 64 * 1024;

test("DirtyMap.extents() reports marked blocks as runs, clipped to the request", () => {
  const m = new DirtyMap(100 * K64 + 100);
  m.mark(K64 + 10, 20); // block 1
  m.mark(10 * K64, 3 * K64); // blocks 10-12
  m.mark(100 * K64 + 50, 10); // the short last block
  assert.equal(m.dirtyBlocks, 5);
  assert.deepEqual(m.extents(0, m.size), [
    { length: K64, flags: 0 },
    { length: K64, flags: STATE_DIRTY },
    { length: 8 * K64, flags: 0 },
    { length: 3 * K64, flags: STATE_DIRTY },
    { length: 87 * K64, flags: 0 },
    { length: 100, flags: STATE_DIRTY },
  ]);
  assert.deepEqual(m.extents(K64 + 5, 100), [{ length: 100, flags: STATE_DIRTY }]);
  assert.deepEqual(m.extents(0, m.size, 2).length, 2);
});

test("DirtyMap.clear() and clearRange() forget marks", () => {
  const m = new DirtyMap(16 * K64);
  m.mark(0, 16 * K64);
  assert.deepEqual(m.extents(0, m.size), [{ length: 16 * K64, flags: STATE_DIRTY }]);
  m.clearRange(4 * K64, 4 * K64);
  assert.equal(m.dirtyBlocks, 12);
  assert.equal(m.isDirty(5 * K64), false);
  m.clear();
  assert.equal(m.dirtyBlocks, 0);
  assert.deepEqual(m.extents(0, m.size), [{ length: 16 * K64, flags: 0 }]);
});
