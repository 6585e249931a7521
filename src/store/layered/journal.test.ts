import { test } from "node:test";
import assert from "node:assert/strict";
import { appendFile, open, stat, truncate } from "node:fs/promises";
import { join } from "node:path";
import { CorruptionError } from "../../common/errors.js";
import { BLOCK_SIZE, type Extent } from "../staging-store.js";
import { HEADER_SIZE, decodeHeader } from "./journal-record.js";
import { LayeredStore } from "./layered-store.js";
import { pattern, withTempDir } from "./test-support.js";

const MiB = 1024 * 1024;
/** Size of a record holding one data extent of `blocks` blocks, unencrypted: frames of 16 blocks, 18 bytes of overhead each. */
const recordSize = (blocks: number): number =>
  HEADER_SIZE + 24 + Math.ceil(blocks / 16) * 18 + blocks * BLOCK_SIZE;

/** Three separately acknowledged batches of 2 blocks each; returns the journal path and data. */
async function threeBatches(dir: string): Promise<{ journal: string; data: Buffer[] }> {
  const store = await LayeredStore.open(dir);
  const t = await store.createTimeline("m1", [{ id: "disk0", sizeBytes: MiB }]);
  const data = [1, 2, 3].map((i) => pattern(i, 2 * BLOCK_SIZE));
  for (const [i, d] of data.entries()) {
    await t.append([{ disk: 0, offset: i * 2 * BLOCK_SIZE, length: d.length, kind: "data", data: d }], {
      tag: i + 1,
    });
  }
  await store.close();
  return { journal: join(dir, "timelines", "m1", "journal-0000000000000001.log"), data };
}

async function flipByte(path: string, at: number): Promise<void> {
  const handle = await open(path, "r+");
  const byte = Buffer.alloc(1);
  await handle.read(byte, 0, 1, at);
  byte[0] = (byte[0] ?? 0) ^ 0x01;
  await handle.write(byte, 0, 1, at);
  await handle.close();
}

async function expectFirstTwo(dir: string, data: Buffer[], journal: string): Promise<void> {
  const store = await LayeredStore.open(dir);
  const t = store.timeline("m1");
  assert.equal(t.lastSeq(), 2);
  assert.equal(t.lastTag(), 2);
  assert.equal((await stat(journal)).size, 2 * recordSize(2));
  assert.deepEqual(await t.read(0, 0, 2 * BLOCK_SIZE), data[0]);
  assert.deepEqual(await t.read(0, 2 * BLOCK_SIZE, 2 * BLOCK_SIZE), data[1]);
  assert.deepEqual(await t.read(0, 4 * BLOCK_SIZE, 2 * BLOCK_SIZE), Buffer.alloc(2 * BLOCK_SIZE));
  // The store keeps working: the next batch takes seq 3.
  const next = pattern(9, BLOCK_SIZE);
  assert.equal(await t.append([{ disk: 0, offset: 0, length: BLOCK_SIZE, kind: "data", data: next }]), 3);
  await store.close();
}

test("Journal.open() truncates a record cut short at the tail", async () => {
  await withTempDir(async (dir) => {
    const { journal, data } = await threeBatches(dir);
    await truncate(journal, 3 * recordSize(2) - 1000);
    await expectFirstTwo(dir, data, journal);
  });
});

test("Journal.open() drops a tail record whose last bytes are garbled", async () => {
  await withTempDir(async (dir) => {
    const { journal, data } = await threeBatches(dir);
    await flipByte(journal, 3 * recordSize(2) - 1);
    await expectFirstTwo(dir, data, journal);
  });
});

test("Journal.open() drops a torn header and garbage after the last record", async () => {
  await withTempDir(async (dir) => {
    const { journal, data } = await threeBatches(dir);
    await truncate(journal, 2 * recordSize(2) + 30); // half a header of record 3
    await appendFile(journal, pattern(5, 5000));
    await expectFirstTwo(dir, data, journal);
  });
});

test("Journal.open() refuses to drop an acknowledged record damaged in the middle", async () => {
  await withTempDir(async (dir) => {
    const { journal } = await threeBatches(dir);
    await flipByte(journal, recordSize(2) + HEADER_SIZE + 24 + 100); // data of record 2
    const sizeBefore = (await stat(journal)).size;
    const store = await LayeredStore.open(dir);
    assert.throws(
      () => store.timeline("m1"),
      (err: unknown) => {
        assert.ok(err instanceof CorruptionError);
        assert.match(err.message, /journal-0000000000000001\.log at offset \d+ \(seq 2\).*not a torn tail/);
        return true;
      },
    );
    await store.close();
    // Nothing was truncated: the damaged data is still there for an operator to look at.
    assert.equal((await stat(journal)).size, sizeBefore);
  });
});

test("Journal.open() drops the rest of a torn group after a damaged record in it", async () => {
  await withTempDir(async (dir) => {
    let store = await LayeredStore.open(dir);
    let t = await store.createTimeline("m1", [{ id: "disk0", sizeBytes: MiB }]);
    const data = [1, 2, 3, 4].map((i) => pattern(i, BLOCK_SIZE));
    const extent = (i: number): Extent => ({
      disk: 0,
      offset: i * BLOCK_SIZE,
      length: BLOCK_SIZE,
      kind: "data",
      data: data[i] ?? Buffer.alloc(0),
    });
    await t.append([extent(0)]);
    // Appends issued together share one group commit: seqs 2, 3 and 4 with groupFirstSeq 2.
    assert.deepEqual(await Promise.all([1, 2, 3].map((i) => t.append([extent(i)]))), [2, 3, 4]);
    await store.close();
    const journal = join(dir, "timelines", "m1", "journal-0000000000000001.log");
    const header = Buffer.alloc(HEADER_SIZE);
    const handle = await open(journal, "r");
    await handle.read(header, 0, HEADER_SIZE, 3 * recordSize(1));
    await handle.close();
    assert.equal(decodeHeader(header)?.groupFirstSeq, 2);
    // A crash mid-group: record 3 never reached the disk whole, record 4 did.
    await flipByte(journal, 2 * recordSize(1) + HEADER_SIZE + 24 + 7);
    store = await LayeredStore.open(dir);
    t = store.timeline("m1");
    assert.equal(t.lastSeq(), 2);
    assert.equal((await stat(journal)).size, 2 * recordSize(1));
    assert.deepEqual(await t.read(0, 0, 2 * BLOCK_SIZE), Buffer.concat(data.slice(0, 2)));
    await store.close();
  });
});
