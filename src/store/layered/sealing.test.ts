/**
 * Frames at rest: round trips through the journal, L0 and packed layers, encrypted or not,
 * in each compression; zeros never stored; the key a timeline is sealed with, and what
 * happens when the key ring does not have it or has another key under its id.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { CorruptionError, UserError } from "../../common/errors.js";
import type { Compression } from "../codec/block-codec.js";
import { makeDataKey, type DataKey } from "../codec/data-key.js";
import { textLike } from "../codec/test-support.js";
import { BLOCK_SIZE, type Extent } from "../staging-store.js";
import { LayeredStore } from "./layered-store.js";
import type { DataKeyProvider, LayeredTimeline } from "./layered-timeline.js";
import { readManifest } from "./manifest.js";
import { DiskModel, pattern, rng, testKeyRing, withTempDir } from "./test-support.js";

const MiB = 1024 * 1024;
const SIZE = 2 * MiB;
const ONE_LAYER = { maxLayers: 1, fanIn: 64, garbageRatio: 0 };

/** Random batches of text-like (compressible) and random blocks, some zero extents. */
async function writeSome(t: LayeredTimeline, model: DiskModel, seed: number, count: number): Promise<void> {
  const random = rng(seed);
  for (let i = 0; i < count; i++) {
    const blocks = 1 + Math.floor(random() * 40);
    const offset = Math.floor(random() * (SIZE / BLOCK_SIZE - blocks)) * BLOCK_SIZE;
    const length = blocks * BLOCK_SIZE;
    const kind = random();
    const extent: Extent =
      kind < 0.1
        ? { disk: 0, offset, length, kind: "zero" }
        : {
            disk: 0,
            offset,
            length,
            kind: "data",
            data: kind < 0.6 ? textLike(length, seed * 1000 + i) : pattern(seed * 1000 + i, length),
          };
    model.apply(await t.append([extent]), [extent]);
  }
}

async function filesOf(dir: string, id: string): Promise<Buffer[]> {
  const tl = join(dir, "timelines", id);
  const names = (await readdir(tl)).filter((n) => /\.(seg|pack|log)$/.test(n));
  return Promise.all(names.map((n) => readFile(join(tl, n))));
}

for (const encrypted of [true, false]) {
  for (const compression of ["zstd", "lz4", "none"] as const satisfies readonly Compression[]) {
    const what = `${encrypted ? "encrypted" : "unencrypted"}, ${compression}`;
    test(`LayeredTimeline round-trips through journal, L0 and packed layers and reopen (${what})`, async () => {
      await withTempDir(async (dir) => {
        const options = {
          rollThresholdBytes: 128 * 1024,
          compaction: { maxLayers: 64, fanIn: 2, garbageRatio: 0.25 },
          compression,
          ...(encrypted ? { keyRing: await testKeyRing(dir) } : {}),
        };
        let store = await LayeredStore.open(join(dir, "store"), options);
        let t = (await store.createTimeline("m1", [{ id: "disk0", sizeBytes: SIZE }], {
          keyScope: "p1",
        })) as LayeredTimeline;
        const model = new DiskModel([SIZE]);
        await writeSome(t, model, 1, 60);
        await t.settled();
        assert.ok(t.stats().layers >= 2, `${t.stats().layers} layers`);
        const seqs = [0, 7, 20, 33, 45, t.lastSeq()];
        const check = async (why: string): Promise<void> => {
          for (const seq of seqs) {
            assert.ok((await t.read(0, 0, SIZE, seq)).equals(model.at(0, seq)), `${why}: seq ${seq}`);
          }
        };
        await check("journal and L0");
        const plainLayers = t.stats().layerBytes;
        await store.close();
        store = await LayeredStore.open(join(dir, "store"), { ...options, compaction: ONE_LAYER });
        t = store.timeline("m1") as LayeredTimeline;
        await t.compact();
        assert.equal(t.stats().layers, 1);
        await check("packed");
        // Half the data is text-like: a compressed packed layer is smaller than the L0 layers.
        if (compression !== "none") {
          assert.ok(t.stats().layerBytes < plainLayers * 0.8, `${t.stats().layerBytes} vs ${plainLayers}`);
        }
        await store.close();
        store = await LayeredStore.open(join(dir, "store"), options);
        t = store.timeline("m1") as LayeredTimeline;
        await check("reopened");
        const manifest = await readManifest(join(dir, "store", "timelines", "m1"));
        assert.equal(manifest.compression, compression);
        assert.equal(manifest.keyId !== undefined, encrypted);
        await store.close();
        // Encrypted: no 64-byte piece of written data appears in any data file or journal segment.
        const probe = textLike(2 * BLOCK_SIZE, 1000).subarray(100, 164);
        if (encrypted) {
          const found = (await filesOf(join(dir, "store"), "m1")).some((b) => b.includes(probe));
          assert.equal(found, false, "plain text found at rest");
        }
      });
    });
  }
}

test("LayeredTimeline.append() stores no bytes for zero blocks inside data extents", async () => {
  await withTempDir(async (dir) => {
    const store = await LayeredStore.open(dir);
    const t = await store.createTimeline("m1", [{ id: "disk0", sizeBytes: 16 * MiB }]);
    const blocks = 1024;
    const data = pattern(3, blocks * BLOCK_SIZE);
    const random = rng(5);
    let zeros = 0;
    for (let b = 0; b < blocks; b++) {
      if (random() < 0.3) {
        data.fill(0, b * BLOCK_SIZE, (b + 1) * BLOCK_SIZE);
        zeros++;
      }
    }
    await t.append([{ disk: 0, offset: MiB, length: data.length, kind: "data", data }]);
    assert.deepEqual(await t.read(0, MiB, data.length), data);
    const journal = join(dir, "timelines", "m1", "journal-0000000000000001.log");
    const stored = (await stat(journal)).size;
    // Data blocks plus at most about 60 bytes per run of them (descriptor and frame overhead).
    const dataBytes = (blocks - zeros) * BLOCK_SIZE;
    assert.ok(
      stored >= dataBytes && stored < dataBytes + blocks * 60,
      `${stored} for ${dataBytes} data bytes`,
    );
    await store.close();
  });
});

test("LayeredStore with a key ring seals each timeline with its project's key; a branch uses its parent's", async () => {
  await withTempDir(async (dir) => {
    const keyRing = await testKeyRing(dir);
    const store = await LayeredStore.open(join(dir, "store"), { keyRing });
    try {
      await assert.rejects(
        store.createTimeline("none", [{ id: "disk0", sizeBytes: MiB }]),
        (err: unknown) => err instanceof UserError && /keyScope/.test(err.message),
      );
      const a = await store.createTimeline("a", [{ id: "disk0", sizeBytes: MiB }], { keyScope: "p1" });
      await store.createTimeline("b", [{ id: "disk0", sizeBytes: MiB }], { keyScope: "p2" });
      await a.append([
        { disk: 0, offset: 0, length: BLOCK_SIZE, kind: "data", data: pattern(1, BLOCK_SIZE) },
      ]);
      await store.createBranch("a-branch", { timeline: "a", seq: 1 });
      const keyOf = async (id: string): Promise<string | undefined> =>
        (await readManifest(join(dir, "store", "timelines", id))).keyId;
      assert.equal(await keyOf("a"), (await keyRing.dataKey("p1")).id);
      assert.equal(await keyOf("b"), (await keyRing.dataKey("p2")).id);
      assert.equal(await keyOf("a-branch"), await keyOf("a"));
    } finally {
      await store.close();
    }
  });
});

test("A timeline sealed with project p1's key cannot be read with a key ring whose p1 key differs", async () => {
  await withTempDir(async (dir) => {
    const keyRing = await testKeyRing(join(dir, "ring1"));
    const root = join(dir, "store");
    let store = await LayeredStore.open(root, { keyRing, rollThresholdBytes: 64 * 1024 });
    const t = (await store.createTimeline("m1", [{ id: "disk0", sizeBytes: MiB }], {
      keyScope: "p1",
    })) as LayeredTimeline;
    const secret = pattern(42, 32 * BLOCK_SIZE);
    await t.append([{ disk: 0, offset: 0, length: secret.length, kind: "data", data: secret }]); // L0 layer
    await t.append([
      {
        disk: 0,
        offset: 256 * 1024,
        length: 4 * BLOCK_SIZE,
        kind: "data",
        data: secret.subarray(0, 4 * BLOCK_SIZE),
      },
    ]); // journal
    await t.settled();
    assert.equal(t.stats().layers, 1);
    await store.close();
    const keyId = (await keyRing.dataKey("p1")).id;

    // Another key ring: its p1 key has another id, and the recorded id is not in it.
    const other = await testKeyRing(join(dir, "ring2"));
    assert.notEqual((await other.dataKey("p1")).id, keyId);
    store = await LayeredStore.open(root, { keyRing: other });
    assert.throws(
      () => store.timeline("m1"),
      (err: unknown) => err instanceof CorruptionError && err.message.includes(keyId),
    );
    await store.close();

    // No key ring at all: a clear error naming the key.
    store = await LayeredStore.open(root);
    assert.throws(
      () => store.timeline("m1"),
      (err: unknown) =>
        err instanceof UserError && err.message.includes(keyId) && /key ring/.test(err.message),
    );
    await store.close();

    // A key ring that hands out other key bytes under the recorded id: every frame fails to open.
    const impostor: DataKey = makeDataKey(keyId, randomBytes(32));
    const lying: DataKeyProvider = {
      dataKey: () => Promise.resolve(impostor),
      keyById: () => Promise.resolve(impostor),
    };
    store = await LayeredStore.open(root, { keyRing: lying });
    const opened = store.timeline("m1");
    for (const offset of [0, 256 * 1024]) {
      await assert.rejects(opened.read(0, offset, 4 * BLOCK_SIZE), (err: unknown) => {
        assert.ok(err instanceof CorruptionError);
        assert.match(
          err.message,
          /Damaged frame in .*(layer-.*\.seg|journal-.*\.log) at offset \d+ \(disk 0 blocks \d+-\d+, seq \d\).*authentication/,
        );
        return true;
      });
    }
    await store.close();
    // And the secret is nowhere at rest in plain text.
    const probe = secret.subarray(4000, 4064);
    for (const file of await filesOf(root, "m1")) assert.equal(file.includes(probe), false);
  });
});
