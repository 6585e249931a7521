import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { UserError } from "../../common/errors.js";
import { BLOCK_SIZE, type Extent } from "../staging-store.js";
import { LayeredStore } from "./layered-store.js";
import type { LayeredTimeline } from "./layered-timeline.js";
import { DiskModel, pattern, rng, withTempDir } from "./test-support.js";

const MiB = 1024 * 1024;

test("LayeredTimeline.append() and read() round-trip data and zero extents", async () => {
  await withTempDir(async (dir) => {
    const store = await LayeredStore.open(dir);
    const t = await store.createTimeline("m1", [
      { id: "disk0", sizeBytes: 4 * MiB },
      { id: "disk1", sizeBytes: MiB },
    ]);
    assert.equal(t.lastSeq(), 0);
    const a = pattern(1, 3 * BLOCK_SIZE);
    const s1 = await t.append([{ disk: 0, offset: BLOCK_SIZE, length: a.length, kind: "data", data: a }]);
    assert.equal(s1, 1);
    const b = pattern(2, BLOCK_SIZE);
    const s2 = await t.append([
      { disk: 0, offset: 2 * BLOCK_SIZE, length: BLOCK_SIZE, kind: "zero" },
      { disk: 1, offset: 0, length: BLOCK_SIZE, kind: "data", data: b },
    ]);
    assert.equal(s2, 2);
    const now = await t.read(0, 0, 5 * BLOCK_SIZE);
    const expected = Buffer.alloc(5 * BLOCK_SIZE);
    a.copy(expected, BLOCK_SIZE);
    expected.fill(0, 2 * BLOCK_SIZE, 3 * BLOCK_SIZE);
    assert.deepEqual(now, expected);
    assert.deepEqual(await t.read(1, 0, BLOCK_SIZE), b);
    // PIT semantics: at seq 1 the zero extent and disk1's write are not there yet.
    const atOne = await t.read(0, 0, 5 * BLOCK_SIZE, 1);
    const expectedOne = Buffer.alloc(5 * BLOCK_SIZE);
    a.copy(expectedOne, BLOCK_SIZE);
    assert.deepEqual(atOne, expectedOne);
    assert.deepEqual(await t.read(1, 0, BLOCK_SIZE, 1), Buffer.alloc(BLOCK_SIZE));
    assert.deepEqual(await t.read(0, 0, 4 * MiB, 0), Buffer.alloc(4 * MiB));
    // Unwritten blocks read as zeros.
    assert.deepEqual(await t.read(0, 2 * MiB, MiB), Buffer.alloc(MiB));
    await store.close();
  });
});

test("LayeredTimeline.append() applies overlapping extents of one batch in order", async () => {
  await withTempDir(async (dir) => {
    const store = await LayeredStore.open(dir);
    const t = await store.createTimeline("m1", [{ id: "disk0", sizeBytes: MiB }]);
    const first = pattern(3, 4 * BLOCK_SIZE);
    const second = pattern(4, BLOCK_SIZE);
    await t.append([
      { disk: 0, offset: 0, length: first.length, kind: "data", data: first },
      { disk: 0, offset: BLOCK_SIZE, length: BLOCK_SIZE, kind: "data", data: second },
      { disk: 0, offset: 3 * BLOCK_SIZE, length: BLOCK_SIZE, kind: "zero" },
    ]);
    const expected = Buffer.from(first);
    second.copy(expected, BLOCK_SIZE);
    expected.fill(0, 3 * BLOCK_SIZE);
    assert.deepEqual(await t.read(0, 0, 4 * BLOCK_SIZE), expected);
    await store.close();
  });
});

test("LayeredTimeline.read() returns large multi-MiB extents exactly, before and after reopen", async () => {
  await withTempDir(async (dir) => {
    let store = await LayeredStore.open(dir);
    let t = await store.createTimeline("m1", [{ id: "disk0", sizeBytes: 64 * MiB }]);
    const big = pattern(5, 12 * MiB);
    await t.append([{ disk: 0, offset: 8 * MiB, length: big.length, kind: "data", data: big }]);
    assert.deepEqual(await t.read(0, 8 * MiB, 12 * MiB), big);
    assert.deepEqual(await t.read(0, 10 * MiB, MiB), big.subarray(2 * MiB, 3 * MiB));
    await store.close();
    store = await LayeredStore.open(dir);
    t = store.timeline("m1");
    assert.deepEqual(await t.read(0, 8 * MiB, 12 * MiB), big);
    await store.close();
  });
});

test("LayeredTimeline.append() group-commits concurrent appends with distinct increasing seqs", async () => {
  await withTempDir(async (dir) => {
    let store = await LayeredStore.open(dir);
    let t = await store.createTimeline("m1", [{ id: "disk0", sizeBytes: 4 * MiB }]);
    const batches: Extent[][] = [];
    for (let i = 0; i < 200; i++) {
      const data = pattern(100 + i, BLOCK_SIZE);
      batches.push([{ disk: 0, offset: (i % 1024) * BLOCK_SIZE, length: BLOCK_SIZE, kind: "data", data }]);
    }
    const seqs = await Promise.all(batches.map((b, i) => t.append(b, { tag: i + 1 })));
    // Seqs follow call order: the group takes queued appends first in, first out.
    assert.deepEqual(
      seqs,
      batches.map((_, i) => i + 1),
    );
    assert.equal(t.lastTag(), 200);
    // 200 appends queued at once take far fewer than 200 syncs.
    const { groups } = (t as LayeredTimeline).stats();
    assert.ok(groups < 20, `${groups} groups for 200 appends`);
    const segments = (await readdir(join(dir, "timelines", "m1"))).filter((n) => n.startsWith("journal-"));
    assert.equal(segments.length, 1);
    await store.close();
    store = await LayeredStore.open(dir);
    t = store.timeline("m1");
    assert.equal(t.lastSeq(), 200);
    assert.equal(t.lastTag(), 200);
    for (let i = 0; i < 200; i++) {
      const extent = batches[i]?.[0];
      assert.ok(extent?.kind === "data");
      assert.deepEqual(await t.read(0, extent.offset, BLOCK_SIZE, i + 1), extent.data);
    }
    await store.close();
  });
});

test("LayeredTimeline.read() of random batches matches a model at every seq", async () => {
  await withTempDir(async (dir) => {
    const store = await LayeredStore.open(dir);
    const size = MiB;
    const t = await store.createTimeline("m1", [{ id: "disk0", sizeBytes: size }]);
    const model = new DiskModel([size]);
    const random = rng(7);
    for (let i = 0; i < 40; i++) {
      const extents: Extent[] = [];
      for (let k = 0; k < 3; k++) {
        const blocks = 1 + Math.floor(random() * 16);
        const offset = Math.floor(random() * (size / BLOCK_SIZE - blocks)) * BLOCK_SIZE;
        const length = blocks * BLOCK_SIZE;
        extents.push(
          random() < 0.2
            ? { disk: 0, offset, length, kind: "zero" }
            : { disk: 0, offset, length, kind: "data", data: pattern(i * 10 + k, length) },
        );
      }
      model.apply(await t.append(extents), extents);
    }
    for (const seq of [0, 1, 13, 27, 40]) {
      assert.deepEqual(await t.read(0, 0, size, seq), model.at(0, seq), `seq ${seq}`);
    }
    await store.close();
  });
});

test("LayeredTimeline.cutPit() is durable and idempotent; lastTag survives reopen", async () => {
  await withTempDir(async (dir) => {
    let store = await LayeredStore.open(dir);
    let t = await store.createTimeline("m1", [{ id: "disk0", sizeBytes: MiB }]);
    assert.equal(t.lastTag(), undefined);
    await t.append([{ disk: 0, offset: 0, length: BLOCK_SIZE, kind: "zero" }], { tag: 41 });
    await t.append([{ disk: 0, offset: 0, length: BLOCK_SIZE, kind: "zero" }], { tag: 42 });
    const pit = await t.cutPit(1, "before upgrade");
    assert.equal(pit.seq, 1);
    assert.equal(pit.label, "before upgrade");
    assert.deepEqual(await t.cutPit(1), pit);
    const latest = await t.cutPit();
    assert.equal(latest.seq, 2);
    await assert.rejects(t.cutPit(3), UserError);
    await store.close();
    store = await LayeredStore.open(dir);
    t = store.timeline("m1");
    assert.deepEqual(t.pits(), [pit, latest]);
    assert.equal(t.lastTag(), 42);
    await store.close();
  });
});

test("LayeredTimeline.append() rejects invalid batches with UserError and changes nothing", async () => {
  await withTempDir(async (dir) => {
    const store = await LayeredStore.open(dir);
    const t = await store.createTimeline("m1", [{ id: "disk0", sizeBytes: MiB }]);
    const good = pattern(9, BLOCK_SIZE);
    await t.append([{ disk: 0, offset: 0, length: BLOCK_SIZE, kind: "data", data: good }], { tag: 1 });
    const journal = join(dir, "timelines", "m1", "journal-0000000000000001.log");
    const sizeBefore = (await stat(journal)).size;
    const data = pattern(10, BLOCK_SIZE);
    const bad: Extent[][] = [
      [{ disk: 0, offset: 100, length: BLOCK_SIZE, kind: "data", data }],
      [{ disk: 0, offset: 0, length: 100, kind: "zero" }],
      [{ disk: 0, offset: MiB, length: BLOCK_SIZE, kind: "data", data }],
      [{ disk: 0, offset: MiB - BLOCK_SIZE, length: 2 * BLOCK_SIZE, kind: "zero" }],
      [{ disk: 1, offset: 0, length: BLOCK_SIZE, kind: "data", data }],
      [{ disk: 0, offset: 0, length: 2 * BLOCK_SIZE, kind: "data", data }],
      [{ disk: 0, offset: 0, length: 0, kind: "zero" }],
      // A good extent first: the whole batch is still refused.
      [
        { disk: 0, offset: 0, length: BLOCK_SIZE, kind: "data", data },
        { disk: 0, offset: -BLOCK_SIZE, length: BLOCK_SIZE, kind: "zero" },
      ],
    ];
    for (const extents of bad) {
      await assert.rejects(
        t.append(extents, { tag: 2 }),
        UserError,
        JSON.stringify(extents.map((e) => e.offset)),
      );
    }
    await assert.rejects(t.read(0, 1, BLOCK_SIZE), UserError);
    await assert.rejects(t.read(0, 0, BLOCK_SIZE, 2), UserError);
    await assert.rejects(t.read(3, 0, BLOCK_SIZE), UserError);
    await assert.rejects(t.changedRanges(0, 0, 5), UserError);
    assert.equal(t.lastSeq(), 1);
    assert.equal(t.lastTag(), 1);
    assert.equal((await stat(journal)).size, sizeBefore);
    assert.deepEqual(await t.read(0, 0, BLOCK_SIZE), good);
    await store.close();
  });
});

test("LayeredTimeline.append() and read() honour an aborted signal", async () => {
  await withTempDir(async (dir) => {
    const store = await LayeredStore.open(dir);
    const t = await store.createTimeline("m1", [{ id: "disk0", sizeBytes: MiB }]);
    const signal = AbortSignal.abort();
    await assert.rejects(t.append([{ disk: 0, offset: 0, length: BLOCK_SIZE, kind: "zero" }], {}, signal));
    await assert.rejects(t.read(0, 0, BLOCK_SIZE, undefined, signal));
    assert.equal(t.lastSeq(), 0);
    await store.close();
  });
});

test("LayeredTimeline.read() exports a mostly-zero 1 GiB disk in 4 MiB pieces quickly", async () => {
  await withTempDir(async (dir) => {
    const store = await LayeredStore.open(dir, { rollThresholdBytes: 2 * MiB });
    const t = await store.createTimeline("m1", [{ id: "disk0", sizeBytes: 1024 * MiB }]);
    // Scattered 64 KiB writes across the disk, some rolled into layers, some in the journal.
    for (let i = 0; i < 64; i++) {
      const data = pattern(i, 64 * 1024);
      await t.append([{ disk: 0, offset: i * 16 * MiB + 4096, length: data.length, kind: "data", data }]);
    }
    await (t as LayeredTimeline).settled();
    assert.ok((t as LayeredTimeline).stats().layers > 0);
    const zero = Buffer.alloc(4 * MiB);
    const started = performance.now();
    let nonZero = 0;
    for (let offset = 0; offset < 1024 * MiB; offset += 4 * MiB) {
      const piece = await t.read(0, offset, 4 * MiB);
      if (!piece.equals(zero)) nonZero++;
    }
    const seconds = (performance.now() - started) / 1000;
    assert.equal(nonZero, 64);
    assert.ok(seconds < 3, `export took ${seconds.toFixed(2)} s`);
    await store.close();
  });
});
