import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { withTempDir } from "../store/layered/test-support.js";
import type { Batch } from "../wire/frames.js";
import { Spool } from "./spool.js";

const batch = (tag: number, kib = 4): Batch => ({
  tag,
  consistent: false,
  extents: [
    { disk: 0, offset: tag * 4096, length: kib * 1024, kind: "data", data: Buffer.alloc(kib * 1024, tag) },
  ],
});

test("Spool keeps acknowledged batches on disk until prune, and a reopen restores every one", async () => {
  await withTempDir(async (dir) => {
    const spool = await Spool.open(dir, 1024 * 1024);
    for (const t of [1, 2, 3]) await spool.add(batch(t));
    assert.deepEqual(
      spool.release(2).map((b) => b.tag),
      [1, 2],
    );
    assert.deepEqual(
      spool.list().map((b) => b.tag),
      [3],
    );
    assert.equal((await readdir(dir)).length, 3, "acknowledged files stay until prune");
    // A crash here: the reopened spool has all three; the replicator's lastTag sorts them out.
    const reopened = await Spool.open(dir, 1024 * 1024);
    assert.deepEqual(
      reopened.list().map((b) => b.tag),
      [1, 2, 3],
    );
    const restored = reopened.list()[0]!.extents[0]!;
    assert.ok(restored.kind === "data" && restored.data.equals(Buffer.alloc(4096, 1)));
    await spool.prune(2);
    assert.equal((await readdir(dir)).length, 1);
    assert.equal(spool.maxTag(), 3);
  });
});

test("Spool drops a torn batch file on open", async () => {
  await withTempDir(async (dir) => {
    const spool = await Spool.open(dir, 1024 * 1024);
    await spool.add(batch(1));
    await writeFile(join(dir, `${"2".padStart(16, "0")}.batch`), Buffer.from([0, 0, 1, 0, 3, 0, 0]));
    const reopened = await Spool.open(dir, 1024 * 1024);
    assert.deepEqual(
      reopened.list().map((b) => b.tag),
      [1],
    );
    assert.equal((await readdir(dir)).length, 1);
  });
});

test("Spool.add() waits while the spool is full and goes on after a release", async () => {
  await withTempDir(async (dir) => {
    const spool = await Spool.open(dir, 100 * 1024);
    await spool.add(batch(1, 64));
    let added = false;
    const pending = spool.add(batch(2, 64)).then(() => (added = true));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(added, false, "a full spool must make the writer wait");
    spool.release(1);
    await pending;
    assert.equal(added, true);
    const aborted = new AbortController();
    const third = spool.add(batch(3, 64), aborted.signal);
    aborted.abort();
    await assert.rejects(third);
  });
});

test("Spool.dropUnacknowledged() deletes the batches never acknowledged and keeps the acknowledged files", async () => {
  await withTempDir(async (dir) => {
    const spool = await Spool.open(dir, 1024 * 1024);
    for (const t of [1, 2, 3, 4]) await spool.add(batch(t));
    spool.release(2);
    assert.equal(await spool.dropUnacknowledged(), 2);
    assert.deepEqual(spool.list(), []);
    assert.equal(spool.usedBytes, 0);
    assert.equal((await readdir(dir)).length, 2, "acknowledged files stay until prune");
    assert.equal(spool.maxTag(), 2);
    const reopened = await Spool.open(dir, 1024 * 1024);
    assert.deepEqual(
      reopened.list().map((b) => b.tag),
      [1, 2],
    );
  });
});
