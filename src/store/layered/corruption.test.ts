/**
 * One flipped byte anywhere at rest, against a model: in an L0 layer's data file, a packed
 * layer's data file, a layer index, a sealed journal segment and the active one. Every read
 * of every PIT either returns exactly the model's bytes or throws a CorruptionError naming
 * the damaged file (and, for damaged data, the seq); a timeline that refuses to open says
 * the same. Never a wrong byte. Run encrypted (AES-GCM tags) and not (XXH64 trailers).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { cp, open, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { CorruptionError } from "../../common/errors.js";
import { BLOCK_SIZE, type Extent, type Timeline } from "../staging-store.js";
import { LayeredStore, type LayeredStoreOptions } from "./layered-store.js";
import type { LayeredTimeline } from "./layered-timeline.js";
import { DiskModel, pattern, rng, testKeyRing, withTempDir } from "./test-support.js";

const DISKS = [
  { id: "disk0", sizeBytes: 512 * 1024 },
  { id: "disk1", sizeBytes: 256 * 1024 },
];
const THRESHOLD = 48 * 1024;
const NO_COMPACTION = { maxLayers: 64, fanIn: 2, garbageRatio: 1 };
const TRIALS_PER_KIND = 8;

type Kind = "L0 data" | "packed data" | "index" | "sealed journal" | "active journal";

async function writeBatches(
  t: Timeline,
  model: DiskModel,
  random: () => number,
  count: number,
): Promise<void> {
  for (let i = 0; i < count; i++) {
    const extents: Extent[] = [];
    for (let k = 0; k < 2; k++) {
      const disk = random() < 0.7 ? 0 : 1;
      const diskBlocks = (DISKS[disk]?.sizeBytes ?? 0) / BLOCK_SIZE;
      const blocks = 1 + Math.floor(random() * 20);
      const offset = Math.floor(random() * (diskBlocks - blocks)) * BLOCK_SIZE;
      const length = blocks * BLOCK_SIZE;
      extents.push(
        random() < 0.1
          ? { disk, offset, length, kind: "zero" }
          : { disk, offset, length, kind: "data", data: pattern(Math.floor(random() * 1e9), length) },
      );
    }
    model.apply(await t.append(extents), extents);
    if (i % 4 === 3) await t.cutPit();
  }
}

/**
 * A store with packed layers, L0 layers, a sealed (unrolled) segment and an active one,
 * closed; returns the model and the PIT seqs.
 */
async function buildTemplate(
  root: string,
  options: LayeredStoreOptions,
): Promise<{ model: DiskModel; pits: number[] }> {
  const random = rng(77);
  const model = new DiskModel(DISKS.map((d) => d.sizeBytes));
  let store = await LayeredStore.open(root, {
    ...options,
    compaction: { maxLayers: 1, fanIn: 4, garbageRatio: 0 },
  });
  let t = (await store.createTimeline("t", DISKS, { keyScope: "p" })) as LayeredTimeline;
  await writeBatches(t, model, random, 24);
  await t.compact();
  await store.close();
  store = await LayeredStore.open(root, { ...options, compaction: NO_COMPACTION });
  t = store.timeline("t") as LayeredTimeline;
  await writeBatches(t, model, random, 16);
  await t.settled();
  t.holdRolls();
  const sealedBefore = await journalSegments(root);
  while ((await journalSegments(root)).length < sealedBefore.length + 1)
    await writeBatches(t, model, random, 2);
  await writeBatches(t, model, random, 3);
  await t.cutPit();
  const pits = t.pits().map((p) => p.seq);
  await store.close();
  return { model, pits };
}

async function journalSegments(root: string): Promise<string[]> {
  return (await readdir(join(root, "timelines", "t"))).filter((n) => n.startsWith("journal-")).sort();
}

async function filesOfKind(root: string): Promise<Map<Kind, string[]>> {
  const names = await readdir(join(root, "timelines", "t"));
  const journal = names.filter((n) => n.startsWith("journal-")).sort();
  return new Map<Kind, string[]>([
    ["L0 data", names.filter((n) => n.endsWith(".seg"))],
    ["packed data", names.filter((n) => n.endsWith(".pack"))],
    ["index", names.filter((n) => n.endsWith(".idx"))],
    ["sealed journal", journal.slice(0, -1)],
    ["active journal", journal.slice(-1)],
  ]);
}

async function flip(path: string, at: number): Promise<void> {
  const handle = await open(path, "r+");
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ (1 << (at % 8));
    await handle.write(byte, 0, 1, at);
  } finally {
    await handle.close();
  }
}

/** An error is acceptable only as a CorruptionError naming the damaged file (and a seq, when data was read). */
function checkError(err: unknown, file: string, why: string, needSeq: boolean): void {
  assert.ok(err instanceof CorruptionError, `${why}: ${String(err)}`);
  assert.ok(err.message.includes(file), `${why}: error does not name ${file}: ${err.message}`);
  if (needSeq) assert.match(err.message, /seq \d+/, `${why}: error names no seq: ${err.message}`);
}

/** Reads every PIT of every disk; returns how many reads failed (properly). */
async function readAll(
  t: Timeline,
  model: DiskModel,
  pits: readonly number[],
  file: string,
  why: string,
): Promise<number> {
  let failed = 0;
  for (const seq of pits) {
    for (const [d, disk] of DISKS.entries()) {
      let got: Buffer;
      try {
        got = await t.read(d, 0, disk.sizeBytes, seq);
      } catch (err) {
        checkError(err, file, `${why}, disk ${d} seq ${seq}`, true);
        failed++;
        continue;
      }
      assert.ok(got.equals(model.at(d, seq)), `${why}: disk ${d} at seq ${seq} returned wrong bytes`);
    }
  }
  return failed;
}

/** The timeline, or undefined when it refused to open with an acceptable error. */
function opened(store: LayeredStore, file: string, why: string): LayeredTimeline | undefined {
  try {
    return store.timeline("t") as LayeredTimeline;
  } catch (err) {
    checkError(err, file, why, false);
    return undefined;
  }
}

for (const encrypted of [true, false]) {
  test(`A flipped byte in any layer, index or journal segment is reported, never read as data (${encrypted ? "encrypted" : "unencrypted"})`, async (ctx) => {
    await withTempDir(async (dir) => {
      const keyRing = encrypted ? await testKeyRing(dir) : undefined;
      const options: LayeredStoreOptions = {
        rollThresholdBytes: THRESHOLD,
        compaction: NO_COMPACTION,
        ...(keyRing === undefined ? {} : { keyRing }),
      };
      const template = join(dir, "template");
      const { model, pits } = await buildTemplate(template, options);
      const kinds = await filesOfKind(template);
      for (const [kind, names] of kinds) assert.ok(names.length > 0, `the template has no ${kind} file`);
      const random = rng(encrypted ? 1 : 2);
      const outcomes = new Map<Kind, { detected: number; harmless: number }>();
      let trial = 0;
      for (const [kind, names] of kinds) {
        const outcome = { detected: 0, harmless: 0 };
        outcomes.set(kind, outcome);
        for (let n = 0; n < TRIALS_PER_KIND; n++) {
          const name = names[Math.floor(random() * names.length)] as string;
          const root = join(dir, `trial-${trial++}`);
          await cp(template, root, { recursive: true });
          const path = join(root, "timelines", "t", name);
          const at = Math.floor(random() * (await stat(path).then((s) => s.size)));
          const why = `${kind} ${name} byte ${at}`;
          // A sealed segment is damaged at rest (open rolls it otherwise); the others under an
          // open store first (the active segment before any reopen), then reopened.
          const atRest = kind === "sealed journal";
          if (atRest) await flip(path, at);
          const store = await LayeredStore.open(root, options);
          let failed = 0;
          try {
            const t = opened(store, name, `${why} (open)`);
            if (t === undefined) {
              outcome.detected++;
              continue;
            }
            if (!atRest) {
              await t.settled();
              await flip(path, at);
            }
            failed += await readAll(t, model, pits, name, `${why} (live)`);
          } finally {
            await store.close();
          }
          const reopened = await LayeredStore.open(root, options);
          try {
            const t = opened(reopened, name, `${why} (reopened)`);
            if (t !== undefined) failed += await readAll(t, model, pits, name, `${why} (reopened)`);
            if (t === undefined || failed > 0) outcome.detected++;
            else outcome.harmless++;
          } finally {
            await reopened.close();
          }
        }
      }
      ctx.diagnostic(JSON.stringify(Object.fromEntries(outcomes)));
      // Most flips land in frames or checksummed headers: each kind must have been caught at least once.
      for (const [kind, outcome] of outcomes) {
        assert.ok(outcome.detected > 0, `no ${kind} damage detected: ${JSON.stringify(outcome)}`);
      }
    });
  });
}
