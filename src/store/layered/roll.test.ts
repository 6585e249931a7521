/**
 * A roll copies no block data: the sealed journal segment becomes the L0 layer's data file
 * (same inode), and the bytes the process writes during the roll are the index and the
 * manifest. Write amplification before compaction stays near 1 for 4 KiB random writes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { BLOCK_SIZE, type Extent } from "../staging-store.js";
import { LayeredStore } from "./layered-store.js";
import type { LayeredTimeline } from "./layered-timeline.js";
import { DiskModel, pattern, rng, testKeyRing, withTempDir } from "./test-support.js";

const MiB = 1024 * 1024;

/** Bytes this process has passed to write(2) and friends, and those it sent to storage. */
async function written(): Promise<{ wchar: number; writeBytes: number }> {
  const text = await readFile("/proc/self/io", "utf8");
  const field = (name: string): number => Number(new RegExp(`^${name}: (\\d+)$`, "m").exec(text)?.[1] ?? NaN);
  return { wchar: field("wchar"), writeBytes: field("write_bytes") };
}

test("A roll links the sealed segment as the L0 data file and writes only its index; WA before compaction is near 1", async (ctx) => {
  await withTempDir(async (dir) => {
    const keyRing = await testKeyRing(dir);
    const store = await LayeredStore.open(join(dir, "store"), {
      rollThresholdBytes: 4 * MiB,
      compaction: { maxLayers: 64, fanIn: 2, garbageRatio: 1 },
      keyRing,
    });
    try {
      const size = 64 * MiB;
      const t = (await store.createTimeline("m1", [{ id: "disk0", sizeBytes: size }], {
        keyScope: "p1",
      })) as LayeredTimeline;
      const tl = join(dir, "store", "timelines", "m1");
      const release = t.holdRolls();
      const model = new DiskModel([size]);
      const random = rng(11);
      let received = 0;
      const before = await written();
      // Random 4 KiB writes, 16 in flight (group commit), until a segment is sealed.
      while ((await readdir(tl)).filter((n) => n.startsWith("journal-")).length < 2) {
        const batches: Extent[][] = Array.from({ length: 16 }, (_, i) => {
          const offset = Math.floor(random() * (size / BLOCK_SIZE)) * BLOCK_SIZE;
          return [
            {
              disk: 0,
              offset,
              length: BLOCK_SIZE,
              kind: "data",
              data: pattern(received + i + 1, BLOCK_SIZE),
            },
          ];
        });
        const seqs = await Promise.all(batches.map((b) => t.append(b)));
        seqs.forEach((seq, i) => model.apply(seq, batches[i] ?? []));
        received += 16 * BLOCK_SIZE;
      }
      const appended = await written();
      const segment = join(tl, "journal-0000000000000001.log");
      const { ino, size: segmentSize } = await stat(segment);

      release();
      await t.settled();
      const after = await written();
      const names = await readdir(tl);
      const data = names.find((n) => n.endsWith(".seg"));
      assert.ok(data !== undefined, names.join(" "));
      assert.ok(!names.includes("journal-0000000000000001.log"), "the journal name is gone");
      assert.equal((await stat(join(tl, data))).ino, ino, "the layer's data file is the segment, not a copy");
      const rollBytes = after.wchar - appended.wchar;
      const index = t.stats().rollIndexBytes;
      // The index, the manifest (twice: a temp file renamed) and nothing else.
      assert.ok(
        rollBytes >= index && rollBytes < index + 16 * 1024,
        `roll wrote ${rollBytes}, index ${index}`,
      );
      assert.ok(rollBytes < segmentSize * 0.05, `roll wrote ${rollBytes} for a ${segmentSize}-byte segment`);
      const wa = (after.wchar - before.wchar) / received;
      assert.ok(wa < 1.1, `write amplification ${wa.toFixed(3)}`);
      ctx.diagnostic(
        `segment ${segmentSize} B, roll wrote ${rollBytes} B (index ${index} B, ${((rollBytes / segmentSize) * 100).toFixed(2)}% of the segment); ` +
          `received ${received} B, wrote ${after.wchar - before.wchar} B (wchar) / ${after.writeBytes - before.writeBytes} B (write_bytes): WA ${wa.toFixed(3)}`,
      );
      // And the data reads back from the layer.
      const image = model.at(0, t.lastSeq());
      for (let offset = 0; offset < size; offset += 4 * MiB) {
        assert.ok((await t.read(0, offset, 4 * MiB)).equals(image.subarray(offset, offset + 4 * MiB)));
      }
    } finally {
      await store.close();
    }
  });
});
