import { test } from "node:test";
import assert from "node:assert/strict";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { LayeredStore } from "../../../store/layered/layered-store.js";
import { withTempDir } from "../../../store/layered/test-support.js";
import { PitCutter } from "../../../replicator/pit-cutter.js";
import { TimelineSink } from "../../../replicator/timeline-sink.js";
import type { Timeline } from "../../../store/staging-store.js";
import { makeImage, sha256File } from "../../../testing/site-fixture.js";
import { createHash } from "node:crypto";
import type { ReplicationSink } from "../change-tracker.js";
import { ScanTracker } from "./scan-tracker.js";

const MiB = 1024 * 1024;

async function timelineSha(t: Timeline): Promise<string> {
  const h = createHash("sha256");
  const size = t.info.disks[0]!.sizeBytes;
  for (let at = 0; at < size; at += 4 * MiB) h.update(await t.read(0, at, Math.min(4 * MiB, size - at)));
  return h.digest("hex");
}

/** The real sink, except that submit number `failAt` rejects (a connection lost mid-pass). */
function failingOnce(sink: ReplicationSink, failAt: number): ReplicationSink {
  let n = 0;
  return {
    submit: (extents, consistent, signal) => {
      if (++n === failAt) return Promise.reject(new Error("connection lost"));
      return sink.submit(extents, consistent, signal);
    },
    compare: (disk, first, hashes, signal) => sink.compare(disk, first, hashes, signal),
  };
}

test("ScanTracker sends every change after a pass that failed half-way (no chunk is taken as sent)", async () => {
  await withTempDir(async (dir) => {
    const image = join(dir, "disk.img");
    await makeImage(image, 32, 12);
    const store = await LayeredStore.open(join(dir, "store"));
    try {
      const t = await store.createTimeline("t1", [{ id: "disk0", sizeBytes: 32 * MiB }]);
      const cutter = new PitCutter(t, () => undefined);
      const sink = new TimelineSink(t, cutter);
      const tracker = await ScanTracker.open({
        disks: [{ path: image, sizeBytes: 32 * MiB }],
        stateDir: join(dir, "state"),
        batchBytes: MiB,
      });
      const signal = new AbortController().signal;
      await tracker.prepare({ timelineId: "t1", fresh: true }, sink, signal);
      await assert.rejects(tracker.passNow(failingOnce(sink, 3), signal), /connection lost/);
      await tracker.passNow(sink, signal);
      await sink.drain();
      assert.equal(await timelineSha(t), await sha256File(image));

      // A change after that is found by the next pass, and only it is sent.
      const fh = await open(image, "r+");
      await fh.write(randomBytes(4096), 0, 4096, 20 * MiB + 8192);
      await fh.close();
      const before = t.lastSeq();
      await tracker.passNow(sink, signal);
      await sink.drain();
      assert.equal(await timelineSha(t), await sha256File(image));
      const changed = await t.changedRanges(0, before, t.lastSeq());
      assert.deepEqual(changed, [{ offset: 20 * MiB, length: 65536 }]);
      await tracker.close();
      await cutter.flush();
    } finally {
      await store.close();
    }
  });
});

test("ScanTracker.prepare() with a timeline it does not know compares hashes and sends only what differs", async () => {
  await withTempDir(async (dir) => {
    const image = join(dir, "disk.img");
    await makeImage(image, 16, 6);
    const store = await LayeredStore.open(join(dir, "store"));
    try {
      const t = await store.createTimeline("t1", [{ id: "disk0", sizeBytes: 16 * MiB }]);
      const cutters = [new PitCutter(t, () => undefined)];
      const sink = new TimelineSink(t, cutters[0]!);
      const signal = new AbortController().signal;
      const first = await ScanTracker.open({
        disks: [{ path: image, sizeBytes: 16 * MiB }],
        stateDir: join(dir, "a"),
      });
      await first.prepare({ timelineId: "t1", fresh: true }, sink, signal);
      await first.passNow(sink, signal);
      await sink.drain();
      await first.close();
      // A branch of that data, and a disk changed in one chunk: a tracker with no memory of
      // the branch (fresh state dir) compares and sends just that chunk.
      const b = await store.createBranch("b1", { timeline: "t1", seq: t.lastSeq() });
      const fh = await open(image, "r+");
      await fh.write(randomBytes(4096), 0, 4096, 3 * MiB);
      await fh.close();
      cutters.push(new PitCutter(b, () => undefined));
      const bsink = new TimelineSink(b, cutters[1]!);
      const second = await ScanTracker.open({
        disks: [{ path: image, sizeBytes: 16 * MiB }],
        stateDir: join(dir, "b"),
      });
      await second.prepare({ timelineId: "b1", fresh: false }, bsink, signal);
      assert.equal(second.progress().disks[0]!.rescannedBytes, 16 * MiB);
      const base = b.lastSeq();
      await second.passNow(bsink, signal);
      await bsink.drain();
      assert.deepEqual(await b.changedRanges(0, base, b.lastSeq()), [{ offset: 3 * MiB, length: 65536 }]);
      assert.equal(await timelineSha(b), await sha256File(image));
      await second.close();
      for (const c of cutters) await c.flush();
    } finally {
      await store.close();
    }
  });
});

test("ScanTracker marks no consistent point for a pass during which a disk changed; the next still pass does", async () => {
  await withTempDir(async (dir) => {
    const image = join(dir, "disk.img");
    await makeImage(image, 16, 8);
    const store = await LayeredStore.open(join(dir, "store"));
    try {
      const t = await store.createTimeline("t1", [{ id: "disk0", sizeBytes: 16 * MiB }]);
      const cutter = new PitCutter(t, () => undefined);
      const sink = new TimelineSink(t, cutter);
      const marks: boolean[] = [];
      let writeDuringPass = true;
      const watching: ReplicationSink = {
        submit: async (extents, consistent, signal) => {
          marks.push(consistent);
          if (writeDuringPass) {
            // A writer touches the disk while the pass is reading it.
            writeDuringPass = false;
            const fh = await open(image, "r+");
            await fh.write(randomBytes(4096), 0, 4096, 4096);
            await fh.close();
          }
          return sink.submit(extents, consistent, signal);
        },
        compare: (disk, first, hashes, signal) => sink.compare(disk, first, hashes, signal),
      };
      const tracker = await ScanTracker.open({
        disks: [{ path: image, sizeBytes: 16 * MiB }],
        stateDir: join(dir, "state"),
        batchBytes: MiB,
      });
      const signal = new AbortController().signal;
      await tracker.prepare({ timelineId: "t1", fresh: true }, watching, signal);
      await tracker.passNow(watching, signal);
      assert.ok(marks.length > 1, "the pass sent several batches");
      assert.ok(!marks.includes(true), "a pass that saw the disk change marked a consistent point");
      assert.notEqual(tracker.progress().changingSince, null);
      marks.length = 0;
      await tracker.passNow(watching, signal);
      assert.equal(marks.at(-1), true, "the still pass marked no consistent point");
      assert.equal(tracker.progress().changingSince, null);
      await sink.drain();
      assert.equal(await timelineSha(t), await sha256File(image));
      await tracker.close();
      await cutter.flush();
    } finally {
      await store.close();
    }
  });
});

test("ScanTracker.progress() reports each disk's own figures", async () => {
  await withTempDir(async (dir) => {
    const images = [join(dir, "a.img"), join(dir, "b.img")];
    await makeImage(images[0]!, 16, 2);
    await makeImage(images[1]!, 8, 1);
    const store = await LayeredStore.open(join(dir, "store"));
    try {
      const t = await store.createTimeline("t1", [
        { id: "disk0", sizeBytes: 16 * MiB },
        { id: "disk1", sizeBytes: 8 * MiB },
      ]);
      const cutter = new PitCutter(t, () => undefined);
      const sink = new TimelineSink(t, cutter);
      const tracker = await ScanTracker.open({
        disks: [
          { path: images[0]!, sizeBytes: 16 * MiB },
          { path: images[1]!, sizeBytes: 8 * MiB },
        ],
        stateDir: join(dir, "state"),
      });
      const signal = new AbortController().signal;
      // Not fresh: a compare reads every disk once.
      await tracker.prepare({ timelineId: "t1", fresh: false }, sink, signal);
      assert.deepEqual(
        tracker.progress().disks.map((d) => [d.totalBytes, d.rescannedBytes, d.replicatedBytes]),
        [
          [16 * MiB, 16 * MiB, 0],
          [8 * MiB, 8 * MiB, 0],
        ],
      );
      await tracker.passNow(sink, signal);
      await sink.drain();
      await new Promise((r) => setTimeout(r, 50)); // acks land on the next turns
      assert.deepEqual(
        tracker.progress().disks.map((d) => [d.replicatedBytes, d.backlogBytes]),
        [
          [16 * MiB, 0],
          [8 * MiB, 0],
        ],
      );
      await tracker.close();
      await cutter.flush();
    } finally {
      await store.close();
    }
  });
});
