/** Our server against QEMU's NBD client: qemu-img and qemu-io. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, writeFile, truncate } from "node:fs/promises";
import { join } from "node:path";
import { serveTestFile } from "./testing/serve-test-file.js";
import { haveTools, runTool } from "./testing/run-tool.js";
import { STATE_DIRTY } from "./protocol.js";

const MiB = 1024 * 1024;
const skip = haveTools("qemu-img", "qemu-io") ? false : "qemu-img and qemu-io are not installed (qemu-utils)";

test(
  "NbdServer serves qemu-img info, qemu-io patterned writes and reads, and qemu-img compare",
  { skip },
  async () => {
    const fx = await serveTestFile({ sizeBytes: 16 * MiB });
    try {
      const info = JSON.parse((await runTool("qemu-img", ["info", "--output=json", fx.uri])).stdout) as {
        "virtual-size": number;
      };
      assert.equal(info["virtual-size"], 16 * MiB);

      const io = await runTool("qemu-io", [
        "-f",
        "raw",
        "-c",
        "write -P 0xab 0 1M",
        "-c",
        "write -f -P 0xcd 5M 64k", // FUA
        "-c",
        "write -z 8M 2M", // WRITE_ZEROES
        "-c",
        "write -P 0xef 12M 2M",
        "-c",
        "discard 12M 1M", // TRIM
        "-c",
        "flush",
        "-c",
        "read -P 0xab 0 1M",
        "-c",
        "read -P 0xcd 5M 64k",
        "-c",
        "read -P 0 2M 1M",
        "-c",
        "read -P 0 12M 1M",
        "-c",
        "read -P 0xef 13M 1M",
        fx.uri,
      ]);
      assert.doesNotMatch(io.stdout, /verification failed/i);

      const file = await readFile(fx.file);
      assert.ok(file.subarray(0, MiB).equals(Buffer.alloc(MiB, 0xab)));
      assert.ok(file.subarray(5 * MiB, 5 * MiB + 65536).equals(Buffer.alloc(65536, 0xcd)));
      assert.ok(file.subarray(13 * MiB, 14 * MiB).equals(Buffer.alloc(MiB, 0xef)));

      const cmp = await runTool("qemu-img", ["compare", "-f", "raw", "-F", "raw", fx.file, fx.uri]);
      assert.match(cmp.stdout, /Images are identical/);

      assert.equal(fx.dirty.isDirty(0), true);
      assert.equal(fx.dirty.isDirty(5 * MiB), true);
      assert.equal(fx.dirty.isDirty(3 * MiB), false);
      assert.equal(fx.dirty.extents(8 * MiB, 2 * MiB)[0]!.flags, STATE_DIRTY);
    } finally {
      await fx.close();
    }
  },
);

test("qemu-img convert copies a sparse image into our export and back out to qcow2", { skip }, async () => {
  const fx = await serveTestFile({ sizeBytes: 16 * MiB });
  try {
    const src = join(fx.dir, "src.raw");
    const content = Buffer.alloc(16 * MiB);
    randomBytes(2 * MiB).copy(content, MiB);
    randomBytes(512 * 1024).copy(content, 9 * MiB + 4096);
    await writeFile(src, content);
    await truncate(src, 16 * MiB);

    await runTool("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", src, fx.uri]);
    assert.ok((await readFile(fx.file)).equals(content), "the export holds the source after convert");

    const out = join(fx.dir, "out.qcow2");
    await runTool("qemu-img", ["convert", "-f", "raw", "-O", "qcow2", fx.uri, out]);
    const cmp = await runTool("qemu-img", ["compare", "-F", "raw", out, src]);
    assert.match(cmp.stdout, /Images are identical/);
    const map = JSON.parse((await runTool("qemu-img", ["map", "--output=json", out])).stdout) as {
      start: number;
      length: number;
      data: boolean;
    }[];
    const dataBytes = map.filter((m) => m.data).reduce((sum, m) => sum + m.length, 0);
    assert.ok(dataBytes < 4 * MiB, `holes stayed holes in the qcow2 (${dataBytes} data bytes)`);
  } finally {
    await fx.close();
  }
});
