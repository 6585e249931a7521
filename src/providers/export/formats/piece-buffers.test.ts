import { test } from "node:test";
import assert from "node:assert/strict";
import { holdBuffer, releaseBuffer, takeBuffer } from "./piece-buffers.js";

test("takeBuffer() hands a buffer out again only once every hold on it, views included, is released", () => {
  const a = takeBuffer(1 << 20);
  assert.equal(holdBuffer(a.subarray(4096, 8192)), true, "a view of a pooled buffer is recognised");
  assert.equal(holdBuffer(Buffer.alloc(16)), false);
  releaseBuffer(a);
  const b = takeBuffer(1 << 20);
  assert.notEqual(b.buffer, a.buffer, "still held by the view's writer");
  releaseBuffer(a.subarray(4096, 8192));
  const c = takeBuffer(1 << 20);
  assert.equal(c.buffer, a.buffer, "recycled once free");
  releaseBuffer(b);
  releaseBuffer(c);
});
