import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { compressSync } from "lz4-napi";
import { FrameError, MAX_FRAME_BYTES, type Compression, type FrameCodec } from "./block-codec.js";
import { makeDataKey, type DataKey } from "./data-key.js";
import { createFrameCodec } from "./frame-codec.js";
import {
  CHECKSUM_BYTES,
  HEADER_BYTES,
  NONCE_BYTES,
  TAG_BYTES,
  frameChecksum,
  readHeader,
  writeHeader,
} from "./frame-header.js";
import { textLike } from "./test-support.js";

const COMPRESSIONS: readonly Compression[] = ["none", "lz4", "zstd"];
const AAD = Buffer.from("timeline t1, disk 0, offset 1048576, seq 42");

function newKey(id = randomBytes(8).toString("hex")): DataKey {
  return makeDataKey(id, randomBytes(32));
}

function codecs(): { name: string; codec: FrameCodec }[] {
  const key = newKey();
  return COMPRESSIONS.flatMap((compression) => [
    { name: `${compression}, plain`, codec: createFrameCodec({ compression }) },
    { name: `${compression}, encrypted`, codec: createFrameCodec({ compression, key }) },
  ]);
}

const SAMPLES = [
  { name: "4 KiB text", data: textLike(4096, 1), compressible: true },
  { name: "64 KiB text", data: textLike(MAX_FRAME_BYTES, 2), compressible: true },
  { name: "4 KiB zero", data: Buffer.alloc(4096), compressible: true },
  { name: "4 KiB random", data: randomBytes(4096), compressible: false },
  { name: "64 KiB random", data: randomBytes(MAX_FRAME_BYTES), compressible: false },
];

test("createFrameCodec() round-trips every compression, encrypted or not, at 4 KiB and 64 KiB", () => {
  for (const { name, codec } of codecs()) {
    for (const sample of SAMPLES) {
      const frame = codec.seal(sample.data, AAD);
      const header = readHeader(frame);
      const what = `${name}, ${sample.name}`;
      assert.equal(header.encrypted, codec.encrypted, what);
      assert.equal(header.plainLength, sample.data.length, what);
      // Compressed when it pays; an incompressible frame is stored plain, adding only the overhead.
      const expected = sample.compressible ? codec.compression : "none";
      assert.equal(header.compression, expected, what);
      if (expected === "none") {
        const overhead = HEADER_BYTES + (codec.encrypted ? NONCE_BYTES + TAG_BYTES : CHECKSUM_BYTES);
        assert.equal(frame.length, sample.data.length + overhead, what);
      } else {
        assert.ok(frame.length < sample.data.length, what);
      }
      if (codec.encrypted && expected === "none") {
        assert.ok(!frame.subarray(HEADER_BYTES, HEADER_BYTES + 64).equals(sample.data.subarray(0, 64)), what);
      }
      assert.deepEqual(codec.open(frame, AAD), sample.data, what);
    }
  }
});

test("createFrameCodec() seals at the zstd level asked for; any codec opens the frames", () => {
  const data = textLike(MAX_FRAME_BYTES, 11);
  const sizes = [-5, 1, 9].map((zstdLevel) => {
    const frame = createFrameCodec({ compression: "zstd", zstdLevel }).seal(data, AAD);
    assert.deepEqual(createFrameCodec({ compression: "none" }).open(frame, AAD), data);
    return frame.length;
  });
  // Higher levels, smaller frames.
  assert.deepEqual(
    [...sizes].sort((a, b) => b - a),
    sizes,
  );
  assert.equal(new Set(sizes).size, 3, String(sizes));
});

test("FrameCodec.open() opens frames of any compression, whatever the codec's own", () => {
  const key = newKey();
  const data = textLike(8192, 3);
  for (const sealer of COMPRESSIONS) {
    const frame = createFrameCodec({ compression: sealer, key }).seal(data, AAD);
    for (const opener of COMPRESSIONS) {
      assert.deepEqual(createFrameCodec({ compression: opener, key }).open(frame, AAD), data);
    }
  }
});

test("FrameCodec.open() detects a flipped byte anywhere: header, payload, nonce, tag, checksum", () => {
  for (const { name, codec } of codecs()) {
    for (const data of [textLike(4096, 4), randomBytes(4096)]) {
      const frame = codec.seal(data, AAD);
      const { storedLength } = readHeader(frame);
      const end = HEADER_BYTES + storedLength;
      const classes = new Set<string>();
      for (let at = 0; at < frame.length; at++) {
        for (const mask of [0x01, 0x80, 0xff]) {
          const bad = Buffer.from(frame);
          bad[at] = (bad[at] ?? 0) ^ mask;
          // Once the structure checks pass, the tag or checksum is what must catch it: it
          // covers the header too.
          const structureOk = catchError(() => readHeader(bad)) === undefined;
          const expected = !structureOk ? /Frame/ : codec.encrypted ? /failed authentication/ : /checksum/;
          assert.throws(
            () => codec.open(bad, AAD),
            (err: unknown) => err instanceof FrameError && expected.test(err.message),
            `${name}: byte ${at} ^ ${mask}`,
          );
        }
        classes.add(
          at < HEADER_BYTES
            ? "header"
            : at < end
              ? "payload"
              : !codec.encrypted
                ? "checksum"
                : at < end + NONCE_BYTES
                  ? "nonce"
                  : "tag",
        );
      }
      const expected = codec.encrypted
        ? ["header", "payload", "nonce", "tag"]
        : ["header", "payload", "checksum"];
      assert.deepEqual([...classes].sort(), expected.sort(), name);
    }
  }
});

test("FrameCodec.open() refuses a frame sealed for another place (aad)", () => {
  for (const { name, codec } of codecs()) {
    const frame = codec.seal(textLike(4096, 5), AAD);
    const other = Buffer.from(AAD);
    other[other.length - 1] = (other[other.length - 1] ?? 0) ^ 1;
    for (const aad of [other, Buffer.alloc(0), Buffer.concat([AAD, Buffer.of(0)])]) {
      assert.throws(() => codec.open(frame, aad), FrameError, name);
    }
    const unbound = codec.seal(textLike(4096, 5), Buffer.alloc(0));
    assert.throws(() => codec.open(unbound, AAD), FrameError, name);
  }
});

test("FrameCodec.open() refuses a frame sealed with another key, with a message that holds no key", () => {
  const key = newKey("k1");
  for (const compression of COMPRESSIONS) {
    const frame = createFrameCodec({ compression, key }).seal(textLike(4096, 6), AAD);
    // Another key, even under the same id (a restored or mixed-up key file).
    for (const other of [newKey("k2"), newKey("k1")]) {
      const err = catchError(() => createFrameCodec({ compression, key: other }).open(frame, AAD));
      assert.ok(err instanceof FrameError);
      assert.match(err.message, /failed authentication/);
      for (const secret of [key.key, other.key]) {
        for (const encoding of ["hex", "base64", "latin1"] as const) {
          assert.ok(!err.message.includes(secret.toString(encoding)));
        }
      }
    }
  }
});

test("FrameCodec.open() refuses a truncated or extended frame", () => {
  for (const { name, codec } of codecs()) {
    const frame = codec.seal(textLike(8192, 7), AAD);
    for (let length = 0; length < frame.length; length++) {
      assert.throws(() => codec.open(frame.subarray(0, length), AAD), FrameError, `${name}: ${length} bytes`);
    }
    assert.throws(() => codec.open(Buffer.concat([frame, Buffer.of(0)]), AAD), FrameError, name);
  }
});

test("FrameCodec.open() refuses an unencrypted frame when it has a key, and an encrypted one when it has none", () => {
  const key = newKey();
  const data = textLike(4096, 8);
  for (const compression of COMPRESSIONS) {
    const plainCodec = createFrameCodec({ compression });
    const keyCodec = createFrameCodec({ compression, key });
    assert.throws(() => keyCodec.open(plainCodec.seal(data, AAD), AAD), /not encrypted.*refused/);
    assert.throws(() => plainCodec.open(keyCodec.seal(data, AAD), AAD), /no data key/);
  }
});

test("FrameCodec.open() refuses forged frames whose checksum matches but whose payload does not decompress right", () => {
  const codec = createFrameCodec({ compression: "none" });
  const forge = (compression: Compression, plainLength: number, payload: Buffer): Buffer => {
    const frame = Buffer.alloc(HEADER_BYTES + payload.length + CHECKSUM_BYTES);
    writeHeader(frame, { compression, encrypted: false, plainLength, storedLength: payload.length });
    payload.copy(frame, HEADER_BYTES);
    const end = HEADER_BYTES + payload.length;
    frame.writeBigUInt64LE(frameChecksum(frame.subarray(0, end), AAD), end);
    return frame;
  };
  const data = textLike(8192, 9);
  const zstdFrame = createFrameCodec({ compression: "zstd" }).seal(data, AAD);
  const zstdPayload = zstdFrame.subarray(HEADER_BYTES, zstdFrame.length - CHECKSUM_BYTES);
  const lz4Payload = compressSync(data);
  // Sanity: the forger's frames are accepted when they are honest.
  assert.deepEqual(codec.open(forge("zstd", 8192, Buffer.from(zstdPayload)), AAD), data);
  assert.deepEqual(codec.open(forge("lz4", 8192, lz4Payload), AAD), data);

  const cases: [string, Buffer, RegExp][] = [
    [
      "zstd that expands beyond the plain length",
      forge("zstd", 4096, Buffer.from(zstdPayload)),
      /decompress/,
    ],
    [
      "zstd that falls short of it",
      forge("zstd", 12288, Buffer.from(zstdPayload)),
      /decompressed \(zstd\) to 8192/,
    ],
    ["zstd garbage", forge("zstd", 8192, randomBytes(100)), /decompress/],
    [
      "lz4 announcing another length",
      forge("lz4", 12288, lz4Payload),
      /announces 8192 bytes, expected 12288/,
    ],
    [
      "lz4 announcing 4 GiB",
      forge("lz4", 8192, Buffer.concat([Buffer.of(255, 255, 255, 255), lz4Payload.subarray(4)])),
      /announces/,
    ],
    ["lz4 cut short", forge("lz4", 8192, lz4Payload.subarray(0, lz4Payload.length - 20)), /decompress/],
  ];
  for (const [what, frame, message] of cases) {
    assert.throws(
      () => codec.open(frame, AAD),
      (err: unknown) => err instanceof FrameError && message.test(err.message),
      what,
    );
  }
});

test("FrameCodec.open() refuses headers with unknown magic, flags or impossible lengths", () => {
  const codec = createFrameCodec({ compression: "zstd" });
  const frame = codec.seal(textLike(4096, 10), AAD);
  const edit = (fn: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(frame);
    fn(b);
    return b;
  };
  const cases: [Buffer, RegExp][] = [
    [edit((b) => (b[0] = 0xc2)), /unknown magic/],
    [edit((b) => (b[1] = 0x08 | (b[1] ?? 0))), /unknown flags/],
    [edit((b) => (b[1] = 0x03)), /unknown flags/],
    [edit((b) => b.writeUInt32LE(4097, 2)), /invalid plain length/],
    [edit((b) => b.writeUInt32LE(MAX_FRAME_BYTES + 4096, 2)), /invalid plain length/],
    [edit((b) => b.writeUInt32LE(0, 2)), /invalid plain length/],
    [edit((b) => b.writeUInt32LE(4096, 6)), /invalid stored length/],
    [edit((b) => b.writeUInt32LE(0, 6)), /invalid stored length/],
  ];
  for (const [bad, message] of cases) assert.throws(() => codec.open(bad, AAD), message);
});

test("FrameCodec.open() returns bytes that do not share memory with the frame", () => {
  for (const { name, codec } of codecs()) {
    const data = randomBytes(4096);
    const frame = codec.seal(data, AAD);
    const opened = codec.open(frame, AAD);
    frame.fill(0);
    assert.deepEqual(opened, data, name);
  }
});

test("FrameCodec.seal() never repeats a nonce for one key, across codecs", () => {
  const key = newKey();
  const a = createFrameCodec({ compression: "none", key });
  const b = createFrameCodec({ compression: "zstd", key });
  const data = randomBytes(4096);
  const nonces = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    for (const codec of [a, b]) {
      const frame = codec.seal(data, AAD);
      const end = frame.length - TAG_BYTES;
      nonces.add(frame.subarray(end - NONCE_BYTES, end).toString("hex"));
    }
  }
  assert.equal(nonces.size, 4000);
});

test("FrameCodec.seal() takes whole blocks up to MAX_FRAME_BYTES only", () => {
  const codec = createFrameCodec({ compression: "lz4" });
  for (const size of [0, 1, 4095, 4097, MAX_FRAME_BYTES + 4096]) {
    assert.throws(() => codec.seal(Buffer.alloc(size), AAD), RangeError, String(size));
  }
  assert.equal(
    codec.open(codec.seal(new Uint8Array(4096), new Uint8Array(0)), new Uint8Array(0)).length,
    4096,
  );
});

test("createFrameCodec() describes itself and rejects bad options", () => {
  const key = newKey("key-1");
  const codec = createFrameCodec({ compression: "zstd", key });
  assert.equal(codec.compression, "zstd");
  assert.equal(codec.encrypted, true);
  assert.equal(codec.keyId, "key-1");
  const plain = createFrameCodec({ compression: "none" });
  assert.equal(plain.encrypted, false);
  assert.equal(plain.keyId, undefined);
  assert.throws(() => createFrameCodec({ compression: "gzip" as Compression }), /Unknown compression "gzip"/);
  for (const zstdLevel of [0, 1.5, 1000]) {
    assert.throws(() => createFrameCodec({ compression: "zstd", zstdLevel }), /Invalid zstd level/);
  }
  assert.throws(
    () => createFrameCodec({ compression: "none", key: makeDataKey("k", randomBytes(16)) }),
    /16 bytes/,
  );
  assert.throws(
    () => createFrameCodec({ compression: "none", key: makeDataKey("../k", randomBytes(32)) }),
    /key id/,
  );
});

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

test("FrameCodec.openTransient() returns the same bytes as open() and refuses the same damage", () => {
  for (const { name, codec } of codecs()) {
    for (const sample of SAMPLES) {
      const frame = codec.seal(sample.data, AAD);
      const what = `${name}, ${sample.name}`;
      assert.deepEqual(codec.openTransient(frame, AAD), sample.data, what);
      for (const at of [0, 5, HEADER_BYTES + 1, frame.length - 1]) {
        const bad = Buffer.from(frame);
        bad[at] = (bad[at] ?? 0) ^ 0x10;
        assert.throws(() => codec.openTransient(bad, AAD), FrameError, `${what}, byte ${at}`);
      }
      assert.throws(() => codec.openTransient(frame, Buffer.from("elsewhere")), FrameError, what);
    }
  }
});
