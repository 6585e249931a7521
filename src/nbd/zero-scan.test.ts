import { test } from "node:test";
import assert from "node:assert/strict";
import { scanZeroRuns, zeroRanges } from "./zero-scan.js";

test("scanZeroRuns() aligns blocks to export offsets and merges equal neighbours", () => {
  const buf = Buffer.alloc(5 * 4096);
  buf[2 * 4096 + 7] = 1; // export block 3 (the buffer starts at offset 4096)
  const runs = scanZeroRuns(buf, 4096, 4096);
  assert.deepEqual(runs, [
    { offset: 4096, length: 2 * 4096, zero: true },
    { offset: 3 * 4096, length: 4096, zero: false },
    { offset: 4 * 4096, length: 2 * 4096, zero: true },
  ]);
  const unaligned = scanZeroRuns(Buffer.alloc(100), 4000, 4096);
  assert.deepEqual(unaligned, [{ offset: 4000, length: 100, zero: true }]);
});

test("zeroRanges() keeps only zero runs of the minimum length", () => {
  const buf = Buffer.alloc(256 * 1024, 1);
  buf.fill(0, 64 * 1024, 192 * 1024);
  buf.fill(0, 200 * 1024, 204 * 1024);
  assert.deepEqual(zeroRanges(buf, 0, 4096, 64 * 1024), [{ offset: 64 * 1024, length: 128 * 1024 }]);
  assert.equal(zeroRanges(Buffer.alloc(8192, 1), 0, 4096, 4096), null);
});
