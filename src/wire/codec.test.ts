import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { ProtocolError } from "../common/errors.js";
import { encodeFrame } from "./codec.js";
import { FrameReader } from "./frame-reader.js";
import { FrameType, MAX_FRAME_BYTES, type Frame } from "./frames.js";

function roundTrip(frame: Frame): Frame {
  const bytes = Buffer.concat(encodeFrame(frame));
  const frames = new FrameReader().push(bytes);
  assert.equal(frames.length, 1);
  return frames[0]!;
}

test("encodeFrame() and FrameReader round-trip every frame type", () => {
  const data = randomBytes(8192);
  const batch = roundTrip({
    type: FrameType.BATCH,
    body: {
      tag: 2 ** 40,
      consistent: true,
      extents: [
        { disk: 1, offset: 4096, length: 8192, kind: "data", data },
        { disk: 0, offset: 2 ** 33, length: 65536, kind: "zero" },
      ],
    },
  });
  assert.equal(batch.type, FrameType.BATCH);
  if (batch.type !== FrameType.BATCH) return;
  assert.equal(batch.body.tag, 2 ** 40);
  assert.equal(batch.body.consistent, true);
  const [e0, e1] = batch.body.extents;
  assert.ok(e0?.kind === "data" && e0.data.equals(data));
  assert.deepEqual(e1, { disk: 0, offset: 2 ** 33, length: 65536, kind: "zero" });

  const hashes = new BigUint64Array([1n, 2n ** 64n - 1n, 0n]);
  const h = roundTrip({ type: FrameType.HASHES, body: { disk: 2, firstChunk: 7, hashes } });
  assert.ok(h.type === FrameType.HASHES && h.body.hashes.length === 3 && h.body.hashes[1] === 2n ** 64n - 1n);

  const differs = [true, false, false, true, false, false, false, false, true];
  const d = roundTrip({ type: FrameType.HASH_DIFF, body: { disk: 0, firstChunk: 3, differs } });
  assert.ok(d.type === FrameType.HASH_DIFF);
  assert.deepEqual(d.body.differs, differs);

  const hello = roundTrip({
    type: FrameType.HELLO,
    body: {
      version: 1,
      role: "source",
      machineId: "m-1",
      disks: [{ id: "disk0", sizeBytes: 8192 }],
      chunkSize: 65536,
    },
  });
  assert.ok(hello.type === FrameType.HELLO && hello.body.machineId === "m-1");
  assert.deepEqual(roundTrip({ type: FrameType.ACK, body: { tag: 5, seq: 9 } }).body, { tag: 5, seq: 9 });
});

test("FrameReader reassembles frames split at every byte boundary", () => {
  const frame: Frame = { type: FrameType.ACK, body: { tag: 1, seq: 2 } };
  const bytes = Buffer.concat([...encodeFrame(frame), ...encodeFrame(frame)]);
  const reader = new FrameReader();
  const got: Frame[] = [];
  for (let i = 0; i < bytes.length; i++) got.push(...reader.push(bytes.subarray(i, i + 1)));
  assert.equal(got.length, 2);
  assert.equal(reader.pending(), 0);
});

test("FrameReader rejects malformed frames with ProtocolError", () => {
  const bad: Buffer[] = [];
  const len = (n: number, type: number, payload: Buffer): Buffer => {
    const h = Buffer.alloc(5);
    h.writeUInt32BE(n, 0);
    h.writeUInt8(type, 4);
    return Buffer.concat([h, payload]);
  };
  bad.push(len(0, 1, Buffer.alloc(0))); // zero length
  bad.push(len(MAX_FRAME_BYTES + 1, 3, Buffer.alloc(0))); // too long
  bad.push(len(1, 99, Buffer.alloc(0))); // unknown type
  bad.push(len(1 + 3, FrameType.HELLO, Buffer.from("{x:"))); // bad JSON
  bad.push(len(1 + 17, FrameType.ACK, Buffer.alloc(17))); // trailing byte
  const unaligned = Buffer.concat(
    encodeFrame({
      type: FrameType.BATCH,
      body: { tag: 1, consistent: false, extents: [{ disk: 0, offset: 0, length: 4096, kind: "zero" }] },
    }),
  );
  unaligned.writeUInt32BE(100, 5 + 13 + 11); // extent length 100
  bad.push(unaligned);
  const truncatedBatch = Buffer.concat(
    encodeFrame({
      type: FrameType.BATCH,
      body: {
        tag: 1,
        consistent: false,
        extents: [{ disk: 0, offset: 0, length: 4096, kind: "data", data: Buffer.alloc(4096) }],
      },
    }),
  );
  truncatedBatch.writeUInt32BE(truncatedBatch.readUInt32BE(0) - 100, 0); // claims fewer bytes than the extent needs
  bad.push(truncatedBatch.subarray(0, truncatedBatch.length - 100));
  bad.push(len(1 + 2, FrameType.HELLO, Buffer.from("[]")));
  for (const b of bad)
    assert.throws(() => new FrameReader().push(b), ProtocolError, b.subarray(0, 16).toString("hex"));
});
