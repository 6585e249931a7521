import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { CorruptionError } from "../../common/errors.js";
import { LocalObjectStore } from "../object-store/local-object-store.js";
import { BLOCK_SIZE, type Extent } from "../staging-store.js";
import { LayeredStore } from "./layered-store.js";
import type { LayeredTimeline } from "./layered-timeline.js";
import { DiskModel, pattern, rng, testKeyRing, withTempDir } from "./test-support.js";

const MiB = 1024 * 1024;

test("LayeredStore with a layerStore keeps layer files as objects: rolls link, compaction puts, drops delete", async () => {
  await withTempDir(async (dir) => {
    const objects = await LocalObjectStore.open(join(dir, "objects"));
    const keyRing = await testKeyRing(dir);
    const options = {
      layerStore: objects,
      keyRing,
      rollThresholdBytes: 64 * 1024,
      compaction: { maxLayers: 3, fanIn: 2, garbageRatio: 0.25 },
    };
    let store = await LayeredStore.open(join(dir, "store"), options);
    let t = (await store.createTimeline("m1", [{ id: "disk0", sizeBytes: MiB }], {
      keyScope: "p1",
    })) as LayeredTimeline;
    const model = new DiskModel([MiB]);
    const random = rng(3);
    for (let i = 0; i < 60; i++) {
      const blocks = 1 + Math.floor(random() * 8);
      const offset = Math.floor(random() * (MiB / BLOCK_SIZE - blocks)) * BLOCK_SIZE;
      const extents: Extent[] = [
        {
          disk: 0,
          offset,
          length: blocks * BLOCK_SIZE,
          kind: "data",
          data: pattern(i + 1, blocks * BLOCK_SIZE),
        },
      ];
      model.apply(await t.append(extents), extents);
      if (i % 10 === 9) await t.cutPit();
    }
    await t.compact();
    await t.settled();
    const tl = join(dir, "store", "timelines", "m1");
    const local = await readdir(tl);
    assert.deepEqual(
      local.filter((n) => n.startsWith("layer-")),
      [],
      "no layer file in the timeline directory",
    );
    const keys = (await objects.list("timelines/m1/")).map((o) => o.key);
    assert.ok(keys.some((k) => k.endsWith(".seg")) || keys.some((k) => k.endsWith(".pack")), keys.join(" "));
    assert.ok(keys.filter((k) => k.endsWith(".idx")).length === t.stats().layers, keys.join(" "));
    const check = async (timeline: LayeredTimeline): Promise<void> => {
      for (const pit of timeline.pits()) {
        assert.ok((await timeline.read(0, 0, MiB, pit.seq)).equals(model.at(0, pit.seq)), `seq ${pit.seq}`);
      }
      assert.ok((await timeline.read(0, 0, MiB)).equals(model.at(0, timeline.lastSeq())));
    };
    await check(t);
    await store.close();

    // An unnamed object (a roll that crashed before its manifest) is removed at open.
    await objects.put("timelines/m1/layer-0000000000000999-0000000000001000.idx", Buffer.from("stray"));
    store = await LayeredStore.open(join(dir, "store"), options);
    t = store.timeline("m1") as LayeredTimeline;
    await check(t);
    assert.ok(!(await objects.list("timelines/m1/")).some((o) => o.key.includes("0000000000000999")));

    // A named object that went missing is reported at open.
    const idx = (await objects.list("timelines/m1/")).find((o) => o.key.endsWith(".idx"));
    assert.ok(idx !== undefined);
    await store.close();
    await objects.delete(idx.key);
    store = await LayeredStore.open(join(dir, "store"), options);
    assert.throws(
      () => store.timeline("m1"),
      (err: unknown) => err instanceof CorruptionError && err.message.includes(idx.key),
    );
    await store.dropTimeline("m1");
    assert.deepEqual(await objects.list("timelines/"), []);
    await store.close();
    await objects.close();
  });
});
