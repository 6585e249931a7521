import { test } from "node:test";
import assert from "node:assert/strict";
import { chsGeometry, parseVhdFooter, vhdFooter, vhdTimestamp } from "./vhd-footer.js";

const GIB = 1024 * 1024 * 1024;

test("chsGeometry() follows the VHD spec's algorithm through each of its branches", () => {
  // 8 MiB: 17 sectors per track, at least 4 heads.
  assert.deepEqual(chsGeometry((8 * 1024 * 1024) / 512), { cylinders: 240, heads: 4, sectorsPerTrack: 17 });
  // 30 GiB: 17 and 31 sectors overflow 16 heads x 1024, so 63.
  assert.deepEqual(chsGeometry((30 * GIB) / 512), { cylinders: 62415, heads: 16, sectorsPerTrack: 63 });
  // 127 GiB: past 65535 x 16 x 63 sectors, 255 sectors per track.
  assert.deepEqual(chsGeometry((127 * GIB) / 512), { cylinders: 65278, heads: 16, sectorsPerTrack: 255 });
  // 1 TiB: clamped to the largest geometry.
  assert.deepEqual(chsGeometry((1024 * GIB) / 512), { cylinders: 65535, heads: 16, sectorsPerTrack: 255 });
});

test("vhdFooter() writes the current size, the disk type and a checksum that parses back", () => {
  const size = 41 * 1024 * 1024;
  const fixed = parseVhdFooter(vhdFooter({ sizeBytes: size, type: "fixed", timestamp: 1 }));
  assert.deepEqual(
    [fixed.cookie, fixed.currentSize, fixed.diskType, fixed.checksumOk],
    ["conectix", size, 2, true],
  );
  const dynamic = vhdFooter({ sizeBytes: size, type: "dynamic" });
  assert.equal(parseVhdFooter(dynamic).diskType, 3);
  assert.equal(dynamic.readBigUInt64BE(16), 512n, "the dynamic header follows the footer copy");
  assert.equal(dynamic.toString("latin1", 28, 32), "win ", "readers take the current size as the disk size");
  dynamic[100] = 1;
  assert.equal(parseVhdFooter(dynamic).checksumOk, false);
  assert.equal(vhdTimestamp(new Date("2000-01-01T00:01:00Z")), 60);
});
