import { test } from "node:test";
import assert from "node:assert/strict";
import { RandomWrites, chunkExtents } from "./store-access.js";

const KiB = 1024;

test("chunkExtents() sends all-zero extents as merged zero extents and the rest as data", () => {
  const chunk = Buffer.alloc(256 * KiB);
  chunk[70 * KiB] = 1; // the second 64 KiB extent holds data
  const extents = chunkExtents(chunk, 1024 * KiB, 64 * KiB);
  assert.deepEqual(
    extents.map((e) => [e.kind, e.offset / KiB, e.length / KiB]),
    [
      ["zero", 1024, 64],
      ["data", 1088, 64],
      ["zero", 1152, 128],
    ],
  );
  const data = extents[1];
  assert.ok(data?.kind === "data" && data.data[6 * KiB] === 1);
});

test("RandomWrites.batch() gives aligned 4 KiB writes inside the disk, the same for the same seed", () => {
  const a = new RandomWrites(5, 1024 * 1024 * KiB).batch(256);
  const b = new RandomWrites(5, 1024 * 1024 * KiB).batch(256);
  assert.equal(a.length, 256);
  for (const e of a) {
    assert.equal(e.kind, "data");
    assert.equal(e.length, 4096);
    assert.equal(e.offset % 4096, 0);
    assert.ok(e.offset + e.length <= 1024 * 1024 * KiB);
  }
  assert.deepEqual(
    a.map((e) => e.offset),
    b.map((e) => e.offset),
  );
  assert.ok(a.every((e, i) => e.kind === "data" && b[i]?.kind === "data" && e.data.equals(b[i].data)));
});
