import { test } from "node:test";
import assert from "node:assert/strict";
import { isZero } from "./is-zero.js";

test("isZero() is true for zero buffers of any size and alignment", () => {
  for (const size of [0, 1, 7, 4096, 65536, 65537, 1024 * 1024 + 3]) {
    const backing = Buffer.alloc(size + 3);
    for (const offset of [0, 1, 3]) {
      assert.equal(isZero(backing.subarray(offset, offset + size)), true, `${size} bytes at ${offset}`);
    }
  }
  assert.equal(isZero(new Uint8Array(8192)), true);
});

test("isZero() is false when any one byte is not zero", () => {
  const size = 3 * 65536 + 4096;
  for (const at of [0, 1, 4095, 65535, 65536, 2 * 65536 + 17, size - 2, size - 1]) {
    const buf = Buffer.alloc(size);
    buf[at] = 0x10;
    assert.equal(isZero(buf), false, `byte ${at}`);
    assert.equal(isZero(buf.subarray(at, at + 1)), false);
  }
  // A view must not look beyond its own bytes.
  const backing = Buffer.alloc(10);
  backing[0] = 1;
  backing[9] = 1;
  assert.equal(isZero(backing.subarray(1, 9)), true);
});
