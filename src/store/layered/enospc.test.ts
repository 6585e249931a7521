import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { appendFile, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BLOCK_SIZE } from "../staging-store.js";
import { LayeredStore } from "./layered-store.js";
import { pattern } from "./test-support.js";

const MiB = 1024 * 1024;

/** Appends `chunk`-sized pieces to `path` until the file system is full. */
async function fill(path: string, chunk: number): Promise<void> {
  const data = Buffer.alloc(chunk, 1);
  for (;;) {
    try {
      await appendFile(path, data);
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, "ENOSPC");
      return;
    }
  }
}

function errnoCode(err: unknown): unknown {
  return err instanceof Error && err.cause instanceof Error
    ? (err.cause as NodeJS.ErrnoException).code
    : undefined;
}

test("LayeredTimeline.append() on a full disk rejects with ENOSPC, changes nothing, and works once space is freed", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-enospc-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", dir], { stdio: "pipe" });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    t.skip(`cannot mount a 2 MiB tmpfs here (needs root): ${String(err).split("\n")[0]}`);
    return;
  }
  let store: LayeredStore | undefined;
  try {
    store = await LayeredStore.open(dir);
    let timeline = await store.createTimeline("m1", [{ id: "disk0", sizeBytes: 8 * MiB }]);
    const first = pattern(1, BLOCK_SIZE);
    await timeline.append([{ disk: 0, offset: 0, length: BLOCK_SIZE, kind: "data", data: first }], {
      tag: 1,
    });
    await timeline.append([{ disk: 0, offset: BLOCK_SIZE, length: BLOCK_SIZE, kind: "zero" }], { tag: 1 });
    const pit = await timeline.cutPit(1);
    const journal = join(dir, "timelines", "m1", "journal-0000000000000001.log");
    const journalSize = (await stat(journal)).size;

    const filler = join(dir, "filler");
    await fill(filler, 64 * 1024);

    const big = pattern(2, 256 * 1024);
    const write = { disk: 0, offset: MiB, length: big.length, kind: "data" as const, data: big };
    const results = await Promise.allSettled([
      timeline.append([write], { tag: 2 }),
      timeline.append([write], { tag: 3 }),
    ]);
    for (const result of results) {
      assert.equal(result.status, "rejected");
      if (result.status === "rejected") assert.equal(errnoCode(result.reason), "ENOSPC");
    }
    await fill(filler, BLOCK_SIZE); // the failed appends gave back their partial writes
    await assert.rejects(timeline.cutPit(2, "full"), (err: unknown) => {
      assert.equal((err as NodeJS.ErrnoException).code, "ENOSPC");
      return true;
    });
    assert.equal(timeline.lastSeq(), 2);
    assert.equal(timeline.lastTag(), 1);
    assert.deepEqual(timeline.pits(), [pit]);
    assert.equal((await stat(journal)).size, journalSize);
    assert.deepEqual(await timeline.read(0, 0, BLOCK_SIZE), first);
    assert.deepEqual(await timeline.read(0, MiB, big.length), Buffer.alloc(big.length));

    await rm(filler);
    assert.equal(await timeline.append([write], { tag: 4 }), 3);
    assert.deepEqual(await timeline.read(0, MiB, big.length), big);
    await store.close();

    store = await LayeredStore.open(dir);
    timeline = store.timeline("m1");
    assert.equal(timeline.lastSeq(), 3);
    assert.equal(timeline.lastTag(), 4);
    assert.deepEqual(timeline.pits(), [pit]);
    assert.deepEqual(await timeline.read(0, 0, BLOCK_SIZE), first);
    assert.deepEqual(await timeline.read(0, MiB, big.length), big);
    await store.close();
  } finally {
    await store?.close().catch(() => undefined);
    try {
      execFileSync("umount", [dir], { stdio: "pipe" });
    } catch {
      execFileSync("umount", ["-l", dir], { stdio: "pipe" }); // still busy: detach it anyway
    }
    await rm(dir, { recursive: true, force: true });
  }
});
