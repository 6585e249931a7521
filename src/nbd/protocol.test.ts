import { test } from "node:test";
import assert from "node:assert/strict";
import {
  OptionDataReader,
  REQUEST_MAGIC,
  decodeRequestHeader,
  encodeInfoRequest,
  encodeMetaContextRequest,
  encodeRequestHeader,
  readU64,
  u64IsSafe,
  writeU64,
} from "./protocol.js";

test("writeU64() and readU64() round-trip offsets up to 2^53", () => {
  const b = Buffer.alloc(8);
  for (const v of [0, 1, 0xffffffff, 0x1_0000_0000, 2 ** 40 + 12345, Number.MAX_SAFE_INTEGER]) {
    writeU64(b, v, 0);
    assert.equal(b.readBigUInt64BE(0), BigInt(v));
    assert.equal(readU64(b, 0), v);
    assert.ok(u64IsSafe(b, 0));
  }
  b.writeBigUInt64BE(2n ** 63n, 0);
  assert.equal(u64IsSafe(b, 0), false);
});

test("decodeRequestHeader() reads what encodeRequestHeader() wrote and rejects a bad magic", () => {
  const b = Buffer.alloc(28);
  encodeRequestHeader(b, 0, 1, 0x11, 0xdeadbeef, 7, 2 ** 33 + 5, 4096);
  assert.deepEqual(decodeRequestHeader(b, 0), {
    flags: 0x11,
    type: 1,
    handleHi: 0xdeadbeef,
    handleLo: 7,
    offset: 2 ** 33 + 5,
    length: 4096,
    offsetSafe: true,
  });
  assert.equal(b.readUInt32BE(0), REQUEST_MAGIC);
  b.writeUInt32BE(0x12345678, 0);
  assert.equal(decodeRequestHeader(b, 0), null);
});

test("OptionDataReader parses an info request and refuses a name length that lies", () => {
  const ok = new OptionDataReader(encodeInfoRequest("disk", [3, 1]));
  assert.equal(ok.string(), "disk");
  assert.equal(ok.u16(), 2);
  assert.equal(ok.u16(), 3);
  assert.equal(ok.u16(), 1);
  assert.equal(ok.remaining, 0);

  const lying = encodeInfoRequest("disk", []);
  lying.writeUInt32BE(1000, 0);
  assert.throws(() => new OptionDataReader(lying).string(), /ends at 10 bytes/);
  const huge = Buffer.alloc(8);
  huge.writeUInt32BE(5000, 0);
  assert.throws(() => new OptionDataReader(huge).string(), /exceeds 4096/);
});

test("encodeMetaContextRequest() lays out name, count and queries", () => {
  const r = new OptionDataReader(encodeMetaContextRequest("d", ["base:allocation", "lifeboat:dirty"]));
  assert.equal(r.string(), "d");
  assert.equal(r.u32(), 2);
  assert.equal(r.string(), "base:allocation");
  assert.equal(r.string(), "lifeboat:dirty");
  assert.equal(r.remaining, 0);
});
