import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compositionOf, planImage, writeTestImage } from "./test-image.js";
import { SeededContent, seededRandom } from "./seeded-content.js";

const MiB = 1024 * 1024;

test("planImage() tiles the image with block-aligned runs, each kind holding its share", () => {
  const size = 4 * 1024 * MiB;
  const runs = planImage(size, 1);
  let offset = 0;
  for (const run of runs) {
    assert.equal(run.offset, offset);
    assert.equal(run.length % 4096, 0);
    assert.ok(run.length > 0);
    offset += run.length;
  }
  assert.equal(offset, size);
  const c = compositionOf(runs);
  assert.equal(c.zero, Math.round((0.3 * size) / 4096) * 4096);
  assert.equal(c.text, Math.round((0.35 * size) / 4096) * 4096);
  assert.equal(c.zero + c.text + c.random, size);
  assert.ok(c.runs > 100, `${c.runs} runs`);
  const small = compositionOf(planImage(32 * MiB, 3));
  assert.ok(Math.abs(small.zero / (32 * MiB) - 0.3) < 0.001);
  assert.deepEqual(planImage(size, 1), runs);
  assert.notDeepEqual(planImage(size, 2), runs);
  assert.throws(() => planImage(1000, 1), RangeError);
});

test("SeededContent gives the same bytes for the same seed and offset", () => {
  const a = Buffer.alloc(8192);
  const b = Buffer.alloc(4096);
  new SeededContent(7).fillRandom(a, 0);
  new SeededContent(7).fillRandom(b, 4096);
  assert.deepEqual(a.subarray(4096), b);
  const t1 = Buffer.alloc(8192);
  const t2 = Buffer.alloc(8192);
  new SeededContent(7).fillText(t1, seededRandom(3));
  new SeededContent(7).fillText(t2, seededRandom(3));
  assert.deepEqual(t1, t2);
  assert.match(t1.toString("latin1"), /[a-z]+ [a-z]+/);
});

test("writeTestImage() writes zero runs as holes and the same bytes for the same seed", async () => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-image-"));
  try {
    const size = 48 * MiB;
    const runs = planImage(size, 11);
    const c = await writeTestImage(join(dir, "a.raw"), size, { seed: 11 });
    await writeTestImage(join(dir, "b.raw"), size, { seed: 11 });
    assert.deepEqual(c, compositionOf(runs));
    const [a, b] = [await readFile(join(dir, "a.raw")), await readFile(join(dir, "b.raw"))];
    assert.equal(a.length, size);
    assert.ok(a.equals(b));
    for (const run of runs) {
      const slice = a.subarray(run.offset, run.offset + run.length);
      assert.equal(
        slice.every((byte) => byte === 0),
        run.kind === "zero",
        `${run.kind} run at ${run.offset}`,
      );
    }
    const { blocks } = await stat(join(dir, "a.raw"));
    assert.ok(
      blocks * 512 <= size - c.zero + MiB,
      `${blocks * 512} bytes allocated for ${size - c.zero} of data`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
