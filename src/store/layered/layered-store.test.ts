import { test } from "node:test";
import assert from "node:assert/strict";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { CorruptionError, UserError } from "../../common/errors.js";
import { BLOCK_SIZE, type Timeline } from "../staging-store.js";
import { LayeredStore } from "./layered-store.js";
import type { LayeredTimeline } from "./layered-timeline.js";
import { pattern, withTempDir } from "./test-support.js";

const MiB = 1024 * 1024;
const DISKS = [{ id: "disk0", sizeBytes: MiB }];

function put(t: Timeline, block: number, seed: number, blocks = 1): Promise<number> {
  const data = pattern(seed, blocks * BLOCK_SIZE);
  return t.append([{ disk: 0, offset: block * BLOCK_SIZE, length: data.length, kind: "data", data }]);
}

function block(t: Timeline, n: number, seq?: number): Promise<Buffer> {
  return t.read(0, n * BLOCK_SIZE, BLOCK_SIZE, seq);
}

test("LayeredStore.createTimeline() refuses a duplicate or invalid id; timeline() throws 404 for none", async () => {
  await withTempDir(async (dir) => {
    const store = await LayeredStore.open(dir);
    await store.createTimeline("m1", DISKS);
    await assert.rejects(store.createTimeline("m1", DISKS), (err: unknown) => {
      assert.ok(err instanceof UserError);
      assert.equal(err.status, 409);
      return true;
    });
    await assert.rejects(store.createTimeline("../evil", DISKS), UserError);
    await assert.rejects(store.createTimeline(".hidden", DISKS), UserError);
    await assert.rejects(store.createTimeline("m2", [{ id: "d", sizeBytes: 1000 }]), UserError);
    await assert.rejects(store.createTimeline("m2", []), UserError);
    assert.throws(
      () => store.timeline("nope"),
      (err: unknown) => err instanceof UserError && err.status === 404,
    );
    assert.equal(store.has("m1"), true);
    assert.equal(store.has("m2"), false);
    assert.deepEqual(
      store.list().map((i) => i.id),
      ["m1"],
    );
    await store.dropTimeline("nope"); // idempotent
    await store.close();
  });
});

test("LayeredStore.createBranch() isolates branch writes and hides parent writes after the base", async () => {
  await withTempDir(async (dir) => {
    let store = await LayeredStore.open(dir, { rollThresholdBytes: 64 * 1024 });
    const parent = await store.createTimeline("src", DISKS);
    await put(parent, 0, 1); // seq 1
    await put(parent, 1, 2); // seq 2
    const base = await parent.cutPit();
    let branch = await store.createBranch("launch", { timeline: "src", seq: base.seq });
    assert.deepEqual(branch.info.base, { timeline: "src", seq: 2 });
    assert.equal(branch.lastSeq(), 2);
    // Copies no data: the branch directory holds only a manifest and an empty journal.
    const names = await readdir(join(dir, "timelines", "launch"));
    assert.deepEqual(names.sort(), ["journal-0000000000000003.log", "manifest.json"]);

    assert.equal(await put(branch, 1, 20), 3); // branch overwrites block 1
    await put(parent, 0, 10); // parent seq 3, after the base
    await put(parent, 2, 11, 20); // parent seq 4, 80 KiB: rolls the parent into a layer
    assert.deepEqual(await block(branch, 0), pattern(1, BLOCK_SIZE));
    assert.deepEqual(await block(branch, 1), pattern(20, BLOCK_SIZE));
    assert.deepEqual(await block(branch, 2), Buffer.alloc(BLOCK_SIZE));
    assert.deepEqual(await block(branch, 1, 2), pattern(2, BLOCK_SIZE)); // the branch at its base
    assert.deepEqual(await block(parent, 1), pattern(2, BLOCK_SIZE)); // the parent is untouched
    assert.deepEqual(await block(parent, 0), pattern(10, BLOCK_SIZE));
    await assert.rejects(branch.read(0, 0, BLOCK_SIZE, 1), UserError); // below the base
    assert.deepEqual(await branch.changedRanges(0, 2, branch.lastSeq()), [
      { offset: BLOCK_SIZE, length: BLOCK_SIZE },
    ]);
    // Branches roll into their own layers too, starting after the base seq.
    assert.equal(await put(branch, 100, 30, 20), 4);
    await (parent as LayeredTimeline).settled();
    await (branch as LayeredTimeline).settled();
    assert.ok((parent as LayeredTimeline).stats().layers >= 1);
    assert.ok((branch as LayeredTimeline).stats().layers >= 1);
    assert.deepEqual(await branch.changedRanges(0, 2, 4), [
      { offset: BLOCK_SIZE, length: BLOCK_SIZE },
      { offset: 100 * BLOCK_SIZE, length: 20 * BLOCK_SIZE },
    ]);

    await store.close();
    store = await LayeredStore.open(dir);
    branch = store.timeline("launch");
    assert.deepEqual(await block(branch, 0), pattern(1, BLOCK_SIZE));
    assert.deepEqual(await block(branch, 1), pattern(20, BLOCK_SIZE));
    assert.equal(branch.lastSeq(), 4);
    assert.deepEqual(await branch.read(0, 100 * BLOCK_SIZE, 20 * BLOCK_SIZE), pattern(30, 20 * BLOCK_SIZE));
    assert.deepEqual(await block(branch, 100, 3), Buffer.alloc(BLOCK_SIZE));
    await store.close();
  });
});

test("LayeredStore.createBranch() of a branch reads through two parents", async () => {
  await withTempDir(async (dir) => {
    const store = await LayeredStore.open(dir);
    const root = await store.createTimeline("root", DISKS);
    await put(root, 0, 1);
    await put(root, 1, 2);
    const child = await store.createBranch("child", { timeline: "root", seq: 2 });
    await put(child, 1, 3); // child seq 3
    await put(child, 2, 4); // child seq 4
    const grandchild = await store.createBranch("grandchild", { timeline: "child", seq: 3 });
    await put(grandchild, 3, 5);
    await put(root, 0, 6);
    assert.deepEqual(await block(grandchild, 0), pattern(1, BLOCK_SIZE));
    assert.deepEqual(await block(grandchild, 1), pattern(3, BLOCK_SIZE));
    assert.deepEqual(await block(grandchild, 2), Buffer.alloc(BLOCK_SIZE)); // child wrote it after seq 3
    assert.deepEqual(await block(grandchild, 3), pattern(5, BLOCK_SIZE));
    assert.equal(grandchild.lastSeq(), 4);
    await assert.rejects(store.createBranch("bad", { timeline: "child", seq: 9 }), UserError);
    await assert.rejects(store.createBranch("bad", { timeline: "child", seq: 1 }), UserError);
    await assert.rejects(
      store.createBranch("bad", { timeline: "missing", seq: 0 }),
      (err: unknown) => err instanceof UserError && err.status === 404,
    );
    await store.close();
  });
});

test("LayeredStore.dropTimeline() refuses a parent with live branches and removes a leaf", async () => {
  await withTempDir(async (dir) => {
    let store = await LayeredStore.open(dir);
    const root = await store.createTimeline("root", DISKS);
    await put(root, 0, 1);
    await store.createBranch("child", { timeline: "root", seq: 1 });
    await assert.rejects(store.dropTimeline("root"), (err: unknown) => {
      assert.ok(err instanceof UserError);
      assert.equal(err.status, 409);
      assert.match(err.message, /child/);
      return true;
    });
    assert.deepEqual(await block(root, 0), pattern(1, BLOCK_SIZE));
    await store.dropTimeline("child");
    assert.equal(store.has("child"), false);
    await store.dropTimeline("root");
    assert.deepEqual(store.list(), []);
    assert.deepEqual(await readdir(join(dir, "timelines")), []);
    await store.close();
    store = await LayeredStore.open(dir);
    assert.deepEqual(store.list(), []);
    // The id is free again.
    const again = await store.createTimeline("root", DISKS);
    assert.deepEqual(await block(again, 0), Buffer.alloc(BLOCK_SIZE));
    await store.close();
  });
});

test("LayeredStore.open() keeps a branch whose parent is gone aside and the rest working", async () => {
  await withTempDir(async (dir) => {
    let store = await LayeredStore.open(dir);
    const root = await store.createTimeline("root", DISKS);
    await put(root, 0, 1);
    await store.createBranch("child", { timeline: "root", seq: 1 });
    const other = await store.createTimeline("other", DISKS);
    await put(other, 3, 3);
    await store.close();
    await rm(join(dir, "timelines", "root"), { recursive: true });

    store = await LayeredStore.open(dir);
    assert.equal(store.has("child"), true);
    assert.throws(
      () => store.timeline("child"),
      (err: unknown) => err instanceof CorruptionError && /parent root is missing/.test(err.message),
    );
    assert.deepEqual(
      store.list().map((i) => i.id),
      ["child", "other"],
    );
    assert.deepEqual(await block(store.timeline("other"), 3), pattern(3, BLOCK_SIZE));
    await store.dropTimeline("child");
    assert.equal(store.has("child"), false);
    await store.close();
  });
});
