import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFile, cp, link, open, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CorruptionError } from "../../common/errors.js";
import { BLOCK_SIZE, type Extent, type Timeline } from "../staging-store.js";
import { HEADER_SIZE } from "./journal-record.js";
import { LayeredStore } from "./layered-store.js";
import type { LayeredTimeline } from "./layered-timeline.js";
import { DiskModel, pattern, rng, withTempDir } from "./test-support.js";

const MiB = 1024 * 1024;
const SIZE = 2 * MiB;

/** Random batches over two small disks, big enough to roll several times at a 256 KiB threshold. */
async function writeRandom(t: LayeredTimeline, model: DiskModel, seed: number, count: number): Promise<void> {
  const random = rng(seed);
  for (let i = 0; i < count; i++) {
    const extents: Extent[] = [];
    for (let k = 0; k < 2; k++) {
      const blocks = 1 + Math.floor(random() * 8);
      const offset = Math.floor(random() * (SIZE / BLOCK_SIZE - blocks)) * BLOCK_SIZE;
      const length = blocks * BLOCK_SIZE;
      const disk = random() < 0.7 ? 0 : 1;
      extents.push(
        random() < 0.15
          ? { disk, offset, length, kind: "zero" }
          : { disk, offset, length, kind: "data", data: pattern(seed * 1000 + i * 2 + k, length) },
      );
    }
    // Non-overlapping within a batch is not required; the model applies them in order too.
    model.apply(await t.append(extents), extents);
  }
}

/** The layers of timeline m1, by index file name. */
function layersOf(dir: string): Promise<string[]> {
  return readdir(join(dir, "timelines", "m1")).then((names) =>
    names.filter((n) => n.endsWith(".idx")).sort(),
  );
}

test("DeltaLayer: rolled layers, journal and reopen all read back every seq exactly", async () => {
  await withTempDir(async (dir) => {
    let store = await LayeredStore.open(dir, { rollThresholdBytes: 256 * 1024 });
    let t = (await store.createTimeline("m1", [
      { id: "disk0", sizeBytes: SIZE },
      { id: "disk1", sizeBytes: SIZE },
    ])) as LayeredTimeline;
    const model = new DiskModel([SIZE, SIZE]);
    await writeRandom(t, model, 1, 120);
    await t.settled();
    assert.ok(t.stats().layers >= 3, `${t.stats().layers} layers`);
    assert.ok(t.stats().journalBytes < 512 * 1024);
    const last = t.lastSeq();
    const seqs = [0, 1, 17, 40, 63, 90, last];
    for (const seq of seqs) {
      for (const disk of [0, 1]) assert.deepEqual(await t.read(disk, 0, SIZE, seq), model.at(disk, seq));
    }
    await store.close();
    // The rolled segments are gone: only the active one is left.
    const names = await readdir(join(dir, "timelines", "m1"));
    assert.ok(names.filter((n) => n.startsWith("journal-")).length <= 2, names.join(" "));

    store = await LayeredStore.open(dir, { rollThresholdBytes: 256 * 1024 });
    t = store.timeline("m1") as LayeredTimeline;
    assert.equal(t.lastSeq(), last);
    await writeRandom(t, model, 2, 40);
    for (const seq of [...seqs, t.lastSeq()]) {
      for (const disk of [0, 1]) assert.deepEqual(await t.read(disk, 0, SIZE, seq), model.at(disk, seq));
    }
    await store.close();
  });
});

test("LayeredTimeline.changedRanges() coalesces writes across journal and layers", async () => {
  await withTempDir(async (dir) => {
    const store = await LayeredStore.open(dir, { rollThresholdBytes: 64 * 1024 });
    const t = (await store.createTimeline("m1", [{ id: "disk0", sizeBytes: 64 * MiB }])) as LayeredTimeline;
    const write = (offset: number, blocks: number): Promise<number> => {
      const data = pattern(offset, blocks * BLOCK_SIZE);
      return t.append([{ disk: 0, offset, length: data.length, kind: "data", data }]);
    };
    await write(0, 4); // seq 1
    await write(4 * BLOCK_SIZE, 4); // seq 2: adjacent, coalesces with seq 1
    await write(MiB, 20); // seq 3, 80 KiB: seals the segment
    await t.settled();
    assert.ok(t.stats().layers >= 1);
    await t.append([{ disk: 0, offset: 32 * MiB, length: 16 * MiB, kind: "zero" }]); // seq 4, journal
    await write(MiB + 10 * BLOCK_SIZE, 30); // seq 5: overlaps and extends seq 3's range
    assert.deepEqual(await t.changedRanges(0, 0, 5), [
      { offset: 0, length: 8 * BLOCK_SIZE },
      { offset: MiB, length: 40 * BLOCK_SIZE },
      { offset: 32 * MiB, length: 16 * MiB },
    ]);
    assert.deepEqual(await t.changedRanges(0, 1, 2), [{ offset: 4 * BLOCK_SIZE, length: 4 * BLOCK_SIZE }]);
    assert.deepEqual(await t.changedRanges(0, 3, 4), [{ offset: 32 * MiB, length: 16 * MiB }]);
    assert.deepEqual(await t.changedRanges(0, 5, 5), []);
    await store.close();
  });
});

test("DeltaLayer read throws CorruptionError naming the layer, blocks and seq when a frame byte is flipped", async () => {
  await withTempDir(async (dir) => {
    let store = await LayeredStore.open(dir, { rollThresholdBytes: 64 * 1024 });
    let t = (await store.createTimeline("m1", [{ id: "disk0", sizeBytes: MiB }])) as LayeredTimeline;
    const data = pattern(77, 32 * BLOCK_SIZE);
    await t.append([{ disk: 0, offset: 0, length: data.length, kind: "data", data }]);
    await t.settled();
    assert.equal(t.stats().layers, 1);
    await store.close();
    const [index] = await layersOf(dir);
    assert.ok(index !== undefined);
    const layer = index.replace(/\.idx$/, ".seg");
    const handle = await open(join(dir, "timelines", "m1", layer), "r+");
    // The L0 data file is the journal segment: one record, its first frame after header and descriptor.
    const at = HEADER_SIZE + 24 + 10 + 5 * BLOCK_SIZE + 100;
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ 0xff;
    await handle.write(byte, 0, 1, at);
    await handle.close();

    store = await LayeredStore.open(dir, { rollThresholdBytes: 64 * 1024 });
    t = store.timeline("m1") as LayeredTimeline;
    await assert.rejects(t.read(0, 0, MiB), (err: unknown) => {
      assert.ok(err instanceof CorruptionError);
      const name = layer.replace(/\./g, "\\.");
      assert.match(
        err.message,
        new RegExp(
          `Damaged frame in .*${name} at offset ${HEADER_SIZE + 24} \\(disk 0 blocks 0-15, seq 1\\)`,
        ),
      );
      return true;
    });
    // Blocks of the other frame are intact and still read.
    assert.deepEqual(
      await t.read(0, 16 * BLOCK_SIZE, 4 * BLOCK_SIZE),
      data.subarray(16 * BLOCK_SIZE, 20 * BLOCK_SIZE),
    );
    await store.close();
  });
});

test("DeltaLayer.open() refuses a layer whose index is damaged", async () => {
  await withTempDir(async (dir) => {
    let store = await LayeredStore.open(dir, { rollThresholdBytes: 64 * 1024 });
    const t = (await store.createTimeline("m1", [{ id: "disk0", sizeBytes: MiB }])) as LayeredTimeline;
    const data = pattern(78, 32 * BLOCK_SIZE);
    await t.append([{ disk: 0, offset: 0, length: data.length, kind: "data", data }]);
    await t.settled();
    await store.close();
    const [layer] = await layersOf(dir);
    assert.ok(layer !== undefined);
    const handle = await open(join(dir, "timelines", "m1", layer), "r+");
    const { size } = await handle.stat();
    await handle.write(Buffer.from([0x5a]), 0, 1, size - 3); // inside the last version entry
    await handle.close();
    store = await LayeredStore.open(dir);
    assert.ok(store.has("m1"));
    assert.throws(
      () => store.timeline("m1"),
      (err: unknown) => {
        assert.ok(err instanceof CorruptionError);
        assert.match(err.message, /Damaged layer index .*\.idx: checksum mismatch/);
        return true;
      },
    );
    await store.dropTimeline("m1");
    assert.equal(store.has("m1"), false);
    await store.close();
  });
});

test("LayeredTimeline.open() completes or discards a roll interrupted between its steps", async () => {
  await withTempDir(async (dir) => {
    const root = join(dir, "store");
    const tl = join(root, "timelines", "m1");
    const segment1 = join(tl, "journal-0000000000000001.log");
    const options = { rollThresholdBytes: 64 * 1024 };
    const model = new DiskModel([MiB]);
    const write = async (t: Timeline, i: number): Promise<void> => {
      const extents: Extent[] = [
        { disk: 0, offset: i * BLOCK_SIZE, length: BLOCK_SIZE, kind: "data", data: pattern(i, BLOCK_SIZE) },
      ];
      model.apply(await t.append(extents), extents);
    };
    let store = await LayeredStore.open(root, options);
    let t = await store.createTimeline("m1", [{ id: "disk0", sizeBytes: MiB }]);
    for (let i = 0; i < 15; i++) await write(t, i);
    await store.close();
    // Keep the first segment and the manifest as they were before the roll.
    await link(segment1, join(dir, "segment1.keep"));
    await copyFile(join(tl, "manifest.json"), join(dir, "manifest.before"));
    store = await LayeredStore.open(root, options);
    t = store.timeline("m1");
    for (let i = 15; i < 20; i++) await write(t, i);
    await (t as LayeredTimeline).settled();
    assert.equal((t as LayeredTimeline).stats().layers, 1);
    await store.close();
    const [layer] = await layersOf(root);
    assert.ok(layer !== undefined);

    const check = async (at: string, layersAfter: number): Promise<void> => {
      const s = await LayeredStore.open(at, options);
      const timeline = s.timeline("m1") as LayeredTimeline;
      await timeline.settled();
      assert.equal(timeline.lastSeq(), 20);
      assert.equal(timeline.stats().layers, layersAfter);
      for (const seq of [3, 15, 16, 20])
        assert.deepEqual(await timeline.read(0, 0, MiB, seq), model.at(0, seq));
      await s.close();
      const names = await readdir(join(at, "timelines", "m1"));
      assert.ok(!names.includes("journal-0000000000000001.log"), names.join(" "));
    };

    // Crash after the manifest named the layer, before the segment's unlink: open deletes the segment.
    const afterManifest = join(dir, "after-manifest");
    await cp(root, afterManifest, { recursive: true });
    await copyFile(
      join(dir, "segment1.keep"),
      join(afterManifest, "timelines", "m1", "journal-0000000000000001.log"),
    );
    await check(afterManifest, 1);

    // Crash after the layer's files were named, before the manifest: open deletes the unnamed
    // layer files (the data file only loses its second name) and rolls again.
    const beforeManifest = join(dir, "before-manifest");
    await cp(root, beforeManifest, { recursive: true });
    const tl2 = join(beforeManifest, "timelines", "m1");
    await copyFile(join(dir, "segment1.keep"), join(tl2, "journal-0000000000000001.log"));
    await copyFile(join(dir, "manifest.before"), join(tl2, "manifest.json"));
    await check(beforeManifest, 1);
    assert.deepEqual(await layersOf(beforeManifest), [layer]);

    // Crash while the index was being written, before anything was named.
    const duringIndex = join(dir, "during-index");
    await cp(root, duringIndex, { recursive: true });
    const tl3 = join(duringIndex, "timelines", "m1");
    await copyFile(join(dir, "segment1.keep"), join(tl3, "journal-0000000000000001.log"));
    await copyFile(join(dir, "manifest.before"), join(tl3, "manifest.json"));
    await rm(join(tl3, layer));
    await rm(join(tl3, layer.replace(/\.idx$/, ".seg")));
    await writeFile(join(tl3, `${layer}.tmp`), "half an index");
    await check(duringIndex, 1);
    assert.deepEqual(await layersOf(duringIndex), [layer]);
  });
});

test("Rolls and compaction handle layers of many frames and 4 MiB chunks exactly", async () => {
  await withTempDir(async (dir) => {
    const store = await LayeredStore.open(dir, {
      rollThresholdBytes: 6 * MiB,
      compaction: { maxLayers: 1, fanIn: 64, garbageRatio: 0 },
    });
    const size = 32 * MiB;
    const t = (await store.createTimeline("m1", [{ id: "disk0", sizeBytes: size }])) as LayeredTimeline;
    const model = new DiskModel([size]);
    const random = rng(99);
    for (let i = 0; i < 40; i++) {
      const blocks = i % 10 === 0 ? 700 : 1 + Math.floor(random() * 30);
      const offset = Math.floor(random() * (size / BLOCK_SIZE - blocks)) * BLOCK_SIZE;
      const extents: Extent[] = [
        {
          disk: 0,
          offset,
          length: blocks * BLOCK_SIZE,
          kind: "data",
          data: pattern(500 + i, blocks * BLOCK_SIZE),
        },
      ];
      model.apply(await t.append(extents), extents);
    }
    await t.settled();
    assert.ok(t.stats().layers >= 1);
    const check = async (): Promise<void> => {
      for (const seq of [10, 25, 40]) {
        const expected = model.at(0, seq);
        for (let offset = 0; offset < size; offset += 4 * MiB) {
          const got = await t.read(0, offset, 4 * MiB, seq);
          assert.ok(got.equals(expected.subarray(offset, offset + 4 * MiB)), `seq ${seq} offset ${offset}`);
        }
      }
    };
    await check();
    // Everything into one packed (zstd) layer, read the same way.
    await t.compact();
    assert.equal(t.stats().layers, 1);
    await check();
    await store.close();
  });
});
