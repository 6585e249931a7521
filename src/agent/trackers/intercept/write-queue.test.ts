import { test } from "node:test";
import assert from "node:assert/strict";
import { MAX_EXTENTS_PER_BATCH } from "../../../wire/frames.js";
import { DurableSeq } from "./durable-seq.js";
import { SlabCopier, WriteQueue, toExtents, type QueuedWrite } from "./write-queue.js";

const KiB = 1024;

function write(seq: number, length: number, data = true): QueuedWrite {
  return {
    disk: 0,
    seq,
    at: seq,
    offset: seq * 4 * KiB,
    length,
    ...(data ? { data: Buffer.alloc(length, seq) } : {}),
  };
}

test("WriteQueue.take() hands out writes in order, up to the byte budget, at least one", () => {
  const q = new WriteQueue();
  for (let i = 1; i <= 5; i++) q.push(write(i, 64 * KiB));
  q.push(write(6, 1024 * 1024 * 1024, false));
  assert.equal(q.bytes, 5 * 64 * KiB);
  assert.deepEqual(
    q.take(128 * KiB).map((w) => w.seq),
    [1, 2],
  );
  assert.deepEqual(
    q.take(10).map((w) => w.seq),
    [3],
  );
  assert.deepEqual(
    q.take(1024 * KiB).map((w) => w.seq),
    [4, 5, 6],
  );
  assert.equal(q.length, 0);
  assert.equal(q.bytes, 0);
});

test("WriteQueue.take() keeps a batch within the wire's extent limit; toExtents() splits huge zero ranges", () => {
  const q = new WriteQueue();
  for (let i = 1; i <= MAX_EXTENTS_PER_BATCH + 10; i++) q.push(write(i, 4 * KiB, false));
  assert.equal(q.take(1 << 30).length, MAX_EXTENTS_PER_BATCH);
  const zero = toExtents([{ disk: 1, seq: 1, at: 0, offset: 4096, length: 2.5 * 1024 * 1024 * 1024 }]);
  assert.deepEqual(
    zero.map((e) => [e.disk, e.offset, e.length, e.kind]),
    [
      [1, 4096, 1024 ** 3, "zero"],
      [1, 4096 + 1024 ** 3, 1024 ** 3, "zero"],
      [1, 4096 + 2 * 1024 ** 3, 0.5 * 1024 ** 3, "zero"],
    ],
  );
});

test("SlabCopier.copy() returns independent copies that share slabs", () => {
  const slabs = new SlabCopier(16 * KiB);
  const src = Buffer.alloc(4 * KiB, 1);
  const a = slabs.copy(src);
  src.fill(2);
  const b = slabs.copy(src);
  assert.ok(a.equals(Buffer.alloc(4 * KiB, 1)) && b.equals(Buffer.alloc(4 * KiB, 2)));
  assert.equal(a.buffer, b.buffer);
  assert.equal(slabs.copy(Buffer.alloc(64 * KiB)).length, 64 * KiB);
});

test("DurableSeq resolves waiters in order as writes become durable; failAll rejects the rest", async () => {
  const seqs = new DurableSeq();
  const order: number[] = [];
  const waits = [1, 2, 3].map((n) => {
    const seq = seqs.next();
    return seqs.wait(seq).then(() => order.push(n));
  });
  seqs.advance(2);
  await Promise.all(waits.slice(0, 2));
  assert.deepEqual(order, [1, 2]);
  assert.equal(seqs.waiting, 1);
  seqs.advance(99); // clamped to what was accepted
  assert.equal(seqs.durable, 3);
  await waits[2];
  const late = seqs.wait(seqs.next());
  seqs.failAll(new Error("stopping"));
  await assert.rejects(late, /stopping/);
});
