/**
 * Compaction and garbage collection, proved against a model: random writes, PITs, branches,
 * PIT drops (as retention makes them), compactions and reopens; after each compaction every
 * kept PIT, every branch base and every head reads exactly as the model says, diffs between
 * kept PITs list exactly the blocks written between them, and a dropped seq below the GC
 * horizon is refused rather than read wrong.
 */
import assert from "node:assert/strict";
import test from "node:test";
import { UserError } from "../../common/errors.js";
import type { Extent } from "../staging-store.js";
import { chooseCompaction } from "./compaction-plan.js";
import type { Compression } from "../codec/block-codec.js";
import { LayeredStore, type LayeredStoreOptions } from "./layered-store.js";
import type { LayeredTimeline } from "./layered-timeline.js";
import { DiskModel, pattern, rng, testKeyRing, withTempDir } from "./test-support.js";

const BLOCK = 4096;
const DISKS = [
  { id: "disk0", sizeBytes: 48 * BLOCK },
  { id: "disk1", sizeBytes: 16 * BLOCK },
];
const OPTIONS = {
  rollThresholdBytes: 24 * 1024,
  compaction: { maxLayers: 3, fanIn: 2, garbageRatio: 0.25 },
};

interface Tracked {
  readonly id: string;
  readonly model: DiskModel;
  /** Written block sets per seq, for diff checks: "disk:block". */
  readonly written: Map<number, Set<string>>;
  readonly baseSeq: number;
}

function randomBatch(next: () => number, seq: number): Extent[] {
  const extents: Extent[] = [];
  const count = 1 + Math.floor(next() * 3);
  for (let k = 0; k < count; k++) {
    const disk = next() < 0.7 ? 0 : 1;
    const diskBlocks = (DISKS[disk]?.sizeBytes ?? 0) / BLOCK;
    const blocks = 1 + Math.floor(next() * 6);
    const start = Math.floor(next() * (diskBlocks - blocks));
    const offset = start * BLOCK;
    const length = blocks * BLOCK;
    extents.push(
      next() < 0.15
        ? { disk, offset, length, kind: "zero" }
        : { disk, offset, length, kind: "data", data: pattern(seq * 16 + k + 1, length) },
    );
  }
  return extents;
}

async function expectState(store: LayeredStore, t: Tracked, seq: number, why: string): Promise<void> {
  const timeline = store.timeline(t.id);
  for (let d = 0; d < DISKS.length; d++) {
    const got = await timeline.read(d, 0, DISKS[d]?.sizeBytes ?? 0, seq);
    assert.ok(
      got.equals(t.model.at(d, seq)),
      `${t.id} disk ${d} at seq ${seq} (${why}) differs from the model`,
    );
  }
}

async function checkDiff(store: LayeredStore, t: Tracked, from: number, to: number): Promise<void> {
  const timeline = store.timeline(t.id);
  const expected = new Set<string>();
  for (const [seq, blocks] of t.written) if (seq > from && seq <= to) for (const b of blocks) expected.add(b);
  const got = new Set<string>();
  for (let d = 0; d < DISKS.length; d++) {
    for (const r of await timeline.changedRanges(d, from, to)) {
      for (let b = r.offset / BLOCK; b < (r.offset + r.length) / BLOCK; b++) got.add(`${d}:${b}`);
    }
  }
  assert.deepEqual([...got].sort(), [...expected].sort(), `${t.id} diff (${from}, ${to}]`);
}

/**
 * Seeds cycle through the sealing variants: encrypted with zstd (the default), unencrypted
 * with none (packed frames copied verbatim from L0), encrypted with lz4.
 */
const VARIANTS: ReadonlyArray<{ encrypted: boolean; compression: Compression }> = [
  { encrypted: true, compression: "zstd" },
  { encrypted: false, compression: "none" },
  { encrypted: true, compression: "lz4" },
];

async function runScenario(seed: number): Promise<void> {
  await withTempDir(async (dir) => {
    const next = rng(seed);
    const variant = VARIANTS[seed % VARIANTS.length] ?? { encrypted: false, compression: "none" };
    const sealing: LayeredStoreOptions = {
      compression: variant.compression,
      ...(variant.encrypted ? { keyRing: await testKeyRing(dir) } : {}),
    };
    let store = await LayeredStore.open(dir, { ...OPTIONS, ...sealing });
    const root: Tracked = {
      id: "root",
      model: new DiskModel(DISKS.map((d) => d.sizeBytes)),
      written: new Map(),
      baseSeq: 0,
    };
    await store.createTimeline("root", DISKS, { keyScope: "project" });
    const tracked: Tracked[] = [root];
    const dropped = new Set<number>();
    let branches = 0;
    try {
      for (let op = 0; op < 70; op++) {
        const roll = next();
        const target = tracked[Math.floor(next() * tracked.length)] as Tracked;
        const timeline = store.timeline(target.id) as LayeredTimeline;
        if (roll < 0.55) {
          const seq = timeline.lastSeq() + 1;
          const extents = randomBatch(next, seq);
          assert.equal(await timeline.append(extents), seq);
          target.model.apply(seq, extents);
          const blocks = new Set<string>();
          for (const e of extents) {
            for (let b = e.offset / BLOCK; b < (e.offset + e.length) / BLOCK; b++)
              blocks.add(`${e.disk}:${b}`);
          }
          target.written.set(seq, blocks);
        } else if (roll < 0.72) {
          await timeline.cutPit();
        } else if (roll < 0.8 && branches < 3 && target === root && root.model !== undefined) {
          const pits = timeline.pits();
          const pit = pits[Math.floor(next() * pits.length)];
          if (pit === undefined) continue;
          const id = `branch${branches++}`;
          await store.createBranch(id, { timeline: "root", seq: pit.seq });
          const model = new DiskModel(DISKS.map((d) => d.sizeBytes));
          for (let d = 0; d < DISKS.length; d++) {
            model.apply(pit.seq, [
              {
                disk: d,
                offset: 0,
                length: DISKS[d]?.sizeBytes ?? 0,
                kind: "data",
                data: root.model.at(d, pit.seq),
              },
            ]);
          }
          tracked.push({ id, model, written: new Map(), baseSeq: pit.seq });
        } else if (roll < 0.9) {
          // Retention: drop about half the PITs, never the newest.
          const pits = timeline.pits().slice(0, -1);
          const doomed = pits.filter(() => next() < 0.5).map((p) => p.seq);
          await timeline.dropPits(doomed);
          if (target === root) for (const s of doomed) dropped.add(s);
        } else if (roll < 0.96) {
          await timeline.compact();
          for (const t of tracked) {
            const tl = store.timeline(t.id);
            for (const pit of tl.pits()) await expectState(store, t, pit.seq, "kept PIT");
            await expectState(store, t, tl.lastSeq(), "head");
            const kept = tl.pits().map((p) => p.seq);
            for (let k = 1; k < kept.length; k++) await checkDiff(store, t, kept[k - 1] ?? 0, kept[k] ?? 0);
          }
          for (const t of tracked.slice(1)) await expectState(store, root, t.baseSeq, "branch base");
          // Every seq the timeline still calls readable reads exactly, PIT or not.
          const rootTimeline = store.timeline("root");
          for (let seq = 0; seq <= rootTimeline.lastSeq(); seq++) {
            if (rootTimeline.readable(seq)) await expectState(store, root, seq, "readable seq");
          }
          for (const seq of dropped) {
            if (root.id === "root" && !store.timeline("root").readable(seq)) {
              await assert.rejects(
                store.timeline("root").read(0, 0, BLOCK, seq),
                (err: unknown) => err instanceof UserError && err.status === 410,
              );
            }
          }
        } else {
          await store.close();
          store = await LayeredStore.open(dir, { ...OPTIONS, ...sealing });
        }
      }
      // Drop every PIT, force everything into one layer: only the head and branch bases stay.
      const timeline = store.timeline("root") as LayeredTimeline;
      await timeline.cutPit();
      await timeline.dropPits(timeline.pits().map((p) => p.seq));
      await store.close();
      store = await LayeredStore.open(dir, {
        ...OPTIONS,
        ...sealing,
        compaction: { maxLayers: 1, fanIn: 64, garbageRatio: 0 },
      });
      const single = store.timeline("root") as LayeredTimeline;
      await single.compact();
      const stats = single.stats();
      assert.ok(stats.layers <= 1, `one layer after full compaction, got ${stats.layers}`);
      const bound = tracked.length * DISKS.reduce((n, d) => n + d.sizeBytes, 0);
      assert.ok(stats.layerBytes <= bound, `layer data ${stats.layerBytes} exceeds ${bound}`);
      for (const pit of single.pits()) await expectState(store, root, pit.seq, "last PIT after full GC");
      await expectState(store, root, single.lastSeq(), "head after full GC");
      for (const t of tracked.slice(1)) {
        await expectState(store, root, t.baseSeq, "branch base after full GC");
        await expectState(store, t, store.timeline(t.id).lastSeq(), "branch head after full GC");
      }
    } catch (err) {
      const what = `${variant.encrypted ? "encrypted" : "plain"}, ${variant.compression}`;
      throw new Error(`compaction scenario failed with seed ${seed} (${what}): ${(err as Error).message}`, {
        cause: err,
      });
    } finally {
      await store.close();
    }
  });
}

test("Compaction keeps every kept PIT, branch base and head exact under random writes, drops and reopens, encrypted or not, in each compression", async () => {
  for (let seed = 1; seed <= 25; seed++) await runScenario(seed);
});

test("Compaction returns the space of versions only dropped PITs needed", async () => {
  await withTempDir(async (dir) => {
    const store = await LayeredStore.open(dir, {
      rollThresholdBytes: 64 * 1024,
      compaction: { maxLayers: 64, fanIn: 2, garbageRatio: 0.25 },
    });
    try {
      const timeline = (await store.createTimeline("t", DISKS)) as LayeredTimeline;
      // The same 8 blocks rewritten 40 times, a PIT after each: 40 versions, all kept.
      for (let i = 0; i < 40; i++) {
        await timeline.append([
          { disk: 0, offset: 0, length: 8 * BLOCK, kind: "data", data: pattern(i + 1, 8 * BLOCK) },
        ]);
        await timeline.cutPit();
      }
      await timeline.compact();
      const before = timeline.stats().layerBytes;
      assert.ok(before >= 40 * 8 * BLOCK * 0.9, `expected the versions to be stored, got ${before}`);
      const pits = timeline.pits();
      await timeline.dropPits(pits.slice(0, -1).map((p) => p.seq));
      const result = await timeline.compact();
      const after = timeline.stats().layerBytes;
      assert.ok(result.freedBytes > 0, "compaction freed nothing");
      assert.ok(after < before / 4, `layer data ${after} not reclaimed from ${before}`);
      const last = pits[pits.length - 1];
      assert.ok(last !== undefined);
      const got = await timeline.read(0, 0, 8 * BLOCK, last.seq);
      assert.ok(got.equals(pattern(40, 8 * BLOCK)));
      const firstSeq = pits[0]?.seq ?? 0;
      // The oldest PIT was dropped below the GC horizon: it is refused, never read from partial history.
      assert.equal(timeline.readable(firstSeq), false);
      await assert.rejects(timeline.read(0, 0, BLOCK, firstSeq), /no longer kept/);
      await assert.rejects(store.createBranch("b", { timeline: "t", seq: firstSeq }), /no longer kept/);
    } finally {
      await store.close();
    }
  });
});

test("chooseCompaction merges the cheapest adjacent window past maxLayers, then rewrites garbage", () => {
  const policy = { maxLayers: 3, fanIn: 2, garbageRatio: 0.25 };
  const layer = (dataBytes: number, garbageBytes = 0, supersededBytes = 0) => ({
    dataBytes,
    garbageBytes,
    supersededBytes,
  });
  assert.deepEqual(chooseCompaction([layer(100), layer(5), layer(6), layer(50)], policy), {
    first: 1,
    last: 2,
    reason: "depth",
  });
  assert.equal(chooseCompaction([layer(100), layer(5), layer(6)], policy), undefined);
  assert.deepEqual(chooseCompaction([layer(100, 10), layer(8, 2)], policy), {
    first: 1,
    last: 1,
    reason: "garbage",
  });
  assert.deepEqual(chooseCompaction([layer(100, 0, 40), layer(20)], policy), {
    first: 0,
    last: 1,
    reason: "garbage",
  });
});
