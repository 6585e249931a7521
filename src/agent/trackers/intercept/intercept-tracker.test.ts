import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { open, readFile, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { waitFor } from "../../../common/wait-for.js";
import { NbdClient } from "../../../nbd/nbd-client.js";
import { PitCutter } from "../../../replicator/pit-cutter.js";
import { TimelineSink } from "../../../replicator/timeline-sink.js";
import { LayeredStore } from "../../../store/layered/layered-store.js";
import { withTempDir } from "../../../store/layered/test-support.js";
import type { Timeline } from "../../../store/staging-store.js";
import { InterceptTracker, type InterceptTrackerOptions } from "./intercept-tracker.js";
import { GatedSink } from "./testing/gated-sink.js";

const KiB = 1024;
const MiB = 1024 * KiB;

async function sha(buf: Buffer | Promise<Buffer>): Promise<string> {
  return createHash("sha256")
    .update(await buf)
    .digest("hex");
}

async function timelineImage(t: Timeline, seq?: number): Promise<Buffer> {
  return t.read(0, 0, t.info.disks[0]!.sizeBytes, seq);
}

interface Fixture {
  readonly dir: string;
  readonly disk: string;
  readonly t: Timeline;
  readonly sink: GatedSink;
  readonly logs: string[];
  tracker: InterceptTracker;
  /** Opens a tracker on the same disk and state (after `tracker.close()`). */
  reopen(extra?: Partial<InterceptTrackerOptions>): Promise<InterceptTracker>;
  client(): Promise<NbdClient>;
  /** Starts replicating: prepare, then run in the background until `stop`. */
  start(tracker?: InterceptTracker, fresh?: boolean): Promise<void>;
  stop(): Promise<void>;
}

/** A disk file with `dataMiB` of random data at its start, a store timeline, a gated sink and a tracker serving the disk. */
async function withTracker(
  o: {
    sizeMiB: number;
    dataMiB: number;
    spoolBytes?: number;
    minPitMs?: number;
  } & Partial<InterceptTrackerOptions>,
  fn: (fx: Fixture) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const disk = join(dir, "disk.img");
    await writeFile(disk, randomBytes(o.dataMiB * MiB));
    await truncate(disk, o.sizeMiB * MiB);
    const store = await LayeredStore.open(join(dir, "store"));
    const t = await store.createTimeline("t1", [{ id: "disk0", sizeBytes: o.sizeMiB * MiB }]);
    const cutter = new PitCutter(t, () => undefined, o.minPitMs ?? 1000);
    const sink = new GatedSink(new TimelineSink(t, cutter), "t1", o.spoolBytes);
    const logs: string[] = [];
    const options = (extra: Partial<InterceptTrackerOptions> = {}): InterceptTrackerOptions => ({
      disks: [{ id: "disk0", path: disk, sizeBytes: o.sizeMiB * MiB }],
      stateDir: join(dir, "state"),
      listen: { socketPath: join(dir, "nbd.sock") },
      log: (m) => logs.push(m),
      ...o,
      ...extra,
    });
    const clients: NbdClient[] = [];
    let run: { abort: AbortController; done: Promise<void> } | null = null;
    const fx: Fixture = {
      dir,
      disk,
      t,
      sink,
      logs,
      tracker: await InterceptTracker.open(options()),
      reopen: async (extra) => (fx.tracker = await InterceptTracker.open(options(extra))),
      client: async () => {
        const c = await NbdClient.connect({ socketPath: join(dir, "nbd.sock") }, { exportName: "disk0" });
        clients.push(c);
        return c;
      },
      start: async (tracker = fx.tracker, fresh = true) => {
        const abort = new AbortController();
        await tracker.prepare({ timelineId: "t1", fresh }, sink, abort.signal);
        run = { abort, done: tracker.run(sink, abort.signal) };
      },
      stop: async () => {
        for (const c of clients.splice(0)) c.destroy();
        run?.abort.abort();
        await run?.done;
        run = null;
      },
    };
    try {
      await fn(fx);
    } finally {
      await fx.stop().catch(() => undefined);
      sink.setOpen(true);
      await fx.tracker.close();
      await cutter.flush();
      await store.close();
    }
  });
}

/** Waits until every write the tracker saw is durable at the standby. */
async function caughtUp(tracker: InterceptTracker): Promise<void> {
  await waitFor(
    "the standby to hold every write",
    () => Promise.resolve(tracker.progress().phase === "continuous" && tracker.caughtUp()),
    30_000,
    10,
  );
}

const SLOTS = 64;
const SLOT_STRIDE = 64 * KiB;
const LOG_BASE = 4 * MiB;

/** Log record `i`: its number, then filler that depends on it. */
function record(i: number): Buffer {
  const b = Buffer.alloc(4 * KiB, i & 0xff);
  b.writeUInt32LE(i, 0);
  return b;
}

test("InterceptTracker: every consistent point shows a prefix of a dependent write chain, during the initial copy and after", async () => {
  await withTracker({ sizeMiB: 32, dataMiB: 3, minPitMs: 20, batchBytes: 256 * KiB }, async (fx) => {
    await fx.start();
    const chain = await fx.client();
    const noise = await fx.client();
    // Noise: independent writes, zeroing and trims elsewhere, 8 at a time.
    let stopNoise = false;
    const noiseDone = Promise.all(
      Array.from({ length: 8 }, async (_, k) => {
        for (let n = 0; !stopNoise; n++) {
          const offset = 16 * MiB + Math.floor(Math.random() * 4000) * 4 * KiB;
          if (n % 17 === 5) await noise.writeZeroes(offset, 12 * KiB);
          else if (n % 23 === 7) await noise.trim(offset, 8 * KiB);
          else await noise.write(offset, randomBytes(4 * KiB * (1 + ((n + k) % 4))));
        }
      }),
    );
    // The chain: write i is issued only once write i-1 was acknowledged.
    const K = 2000;

    for (let i = 1; i <= K; i++) await chain.write(LOG_BASE + (i % SLOTS) * SLOT_STRIDE, record(i));

    stopNoise = true;
    await noiseDone;
    await caughtUp(fx.tracker);

    const pits = fx.t.pits();
    assert.ok(pits.length >= 10, `only ${pits.length} consistent points were cut`);
    let checked = 0;
    for (const pit of pits) {
      const slots: Buffer[] = [];
      for (let j = 0; j < SLOTS; j++)
        slots.push(await fx.t.read(0, LOG_BASE + j * SLOT_STRIDE, 4 * KiB, pit.seq));
      const seen = slots.map((b) => b.readUInt32LE(0));
      const newest = Math.max(...seen);
      // A prefix 1..newest: each slot holds the newest record <= newest that maps to it.
      for (let j = 0; j < SLOTS; j++) {
        const expected = newest - ((((newest - j) % SLOTS) + SLOTS) % SLOTS);
        assert.equal(
          seen[j],
          expected > 0 ? expected : 0,
          `PIT ${pit.seq}, slot ${j}: newest record ${newest}`,
        );
        if (expected > 0) assert.ok(slots[j]!.equals(record(expected)));
      }
      if (newest > 0) checked++;
    }
    assert.ok(checked >= 5, `only ${checked} PITs held part of the chain`);
    assert.equal(await sha(timelineImage(fx.t)), await sha(readFile(fx.disk)));
  });
});

test("InterceptTracker --sync: a write completes only once the standby holds it; --sync-timeout degrades to async and recovers", async () => {
  await withTracker({ sizeMiB: 8, dataMiB: 1, sync: true, syncTimeoutMs: 1500 }, async (fx) => {
    await fx.start();
    await caughtUp(fx.tracker);
    const c = await fx.client();
    const block = randomBytes(8 * KiB);
    await c.write(MiB, block);
    // Acknowledged means durable at the standby: it is in the timeline already.
    assert.ok((await fx.t.read(0, MiB, 8 * KiB)).equals(block));

    fx.sink.setOpen(false);
    const second = randomBytes(4 * KiB);
    let done = false;
    const writing = c.write(2 * MiB, second).then(() => (done = true));
    await sleep(600);
    assert.equal(done, false, "a synchronous write completed while the replicator was away");
    fx.sink.setOpen(true);
    await writing;
    assert.ok((await fx.t.read(0, 2 * MiB, 4 * KiB)).equals(second));

    // Past --sync-timeout the write completes without the standby, and the tracker says so.
    fx.sink.setOpen(false);
    const started = Date.now();
    await c.write(3 * MiB, randomBytes(4 * KiB));
    assert.ok(Date.now() - started >= 1000, `completed after ${Date.now() - started} ms`);
    assert.match(fx.tracker.progress().note ?? "", /degraded to asynchronous/);
    await c.write(3 * MiB + 4 * KiB, randomBytes(4 * KiB)); // asynchronous now: no wait
    fx.sink.setOpen(true);
    await caughtUp(fx.tracker);
    assert.equal(fx.tracker.progress().note, undefined);
    assert.ok(fx.logs.some((l) => /Synchronous replication resumed/.test(l)));
    assert.equal(await sha(timelineImage(fx.t)), await sha(readFile(fx.disk)));
  });
});

test("InterceptTracker: past the spool and queue bounds it keeps a dirty map, reports BACKLOG, then re-sends only the dirty regions", async () => {
  await withTracker(
    { sizeMiB: 64, dataMiB: 2, spoolBytes: 512 * KiB, queueLimitBytes: 256 * KiB, batchBytes: 128 * KiB },
    async (fx) => {
      await fx.start();
      await caughtUp(fx.tracker);
      const c = await fx.client();
      fx.sink.setOpen(false);
      const before = fx.sink.dataBytes;
      // 4 MiB of writes in 64 KiB pieces over 32 regions: they all complete (async never waits).
      const written = 4 * MiB;
      const writes: Promise<void>[] = [];
      for (let i = 0; i < written / (64 * KiB); i++)
        writes.push(
          c.write(8 * MiB + (i % 32) * 1536 * KiB + Math.floor(i / 32) * 64 * KiB, randomBytes(64 * KiB)),
        );
      await Promise.all(writes);
      const p = fx.tracker.progress();
      assert.equal(p.phase, "backlog");
      assert.ok(p.disks[0]!.backlogBytes >= 3 * MiB, `backlog ${p.disks[0]!.backlogBytes}`);
      assert.ok(fx.logs.some((l) => /Replication backlog/.test(l)));

      fx.sink.setOpen(true);
      await caughtUp(fx.tracker);
      const sent = fx.sink.dataBytes - before;
      assert.ok(fx.logs.some((l) => /RESCAN of \d+ bytes in dirty regions/.test(l)));
      assert.ok(fx.tracker.progress().disks[0]!.rescannedBytes > 0);
      // What the spool held, plus the dirty regions once: far from the 64 MiB disk.
      assert.ok(sent <= written + MiB, `sent ${sent} bytes for ${written} written`);
      assert.equal(await sha(timelineImage(fx.t)), await sha(readFile(fx.disk)));
      // The round ends with a consistent point: the newest PIT is the disk.
      await waitFor(
        "a PIT after the RESCAN",
        () => Promise.resolve(fx.t.pits().at(-1)?.seq === fx.t.lastSeq()),
        5000,
        50,
      );
    },
  );
});

test("InterceptTracker restarts: dirty regions survive a clean stop; a disk written behind its back or an unclean stop leads to a full compare", async () => {
  await withTracker(
    { sizeMiB: 16, dataMiB: 2, spoolBytes: 128 * KiB, queueLimitBytes: 128 * KiB },
    async (fx) => {
      await fx.start();
      await caughtUp(fx.tracker);
      let c = await fx.client();
      fx.sink.setOpen(false);
      for (let i = 0; i < 16; i++) await c.write(4 * MiB + i * 256 * KiB, randomBytes(64 * KiB));
      assert.equal(fx.tracker.progress().phase, "backlog");
      await fx.stop();
      await fx.tracker.close();
      fx.sink.setOpen(true);

      // Clean restart: continue the same timeline and send only the dirty regions.
      const before = fx.sink.dataBytes;
      await fx.start(await fx.reopen(), false);
      await caughtUp(fx.tracker);
      assert.ok(fx.sink.dataBytes - before <= MiB + 256 * KiB, `sent ${fx.sink.dataBytes - before}`);
      assert.equal(await sha(timelineImage(fx.t)), await sha(readFile(fx.disk)));
      c = await fx.client();
      await c.write(5 * MiB, randomBytes(4 * KiB));
      await caughtUp(fx.tracker);
      await fx.stop();
      await fx.tracker.close();

      // Written behind the agent's back while it was stopped: the file's stamp tells, and it compares.
      const sneak = async (offset: number): Promise<void> => {
        const fh = await open(fx.disk, "r+");
        await fh.write(randomBytes(4 * KiB), 0, 4 * KiB, offset);
        await fh.close();
      };
      await sneak(9 * MiB);
      let sentBefore = fx.sink.dataBytes;
      await fx.start(await fx.reopen(), false);
      await caughtUp(fx.tracker);
      assert.ok(fx.logs.some((l) => /was written while the agent did not serve it/.test(l)));
      assert.equal(fx.tracker.progress().disks[0]!.rescannedBytes, 16 * MiB);
      assert.ok(fx.sink.dataBytes - sentBefore <= 64 * KiB, `sent ${fx.sink.dataBytes - sentBefore}`);
      assert.equal(await sha(timelineImage(fx.t)), await sha(readFile(fx.disk)));
      await fx.stop();
      await fx.tracker.close();

      // A crash: the state says the tracker was running (and the write it was handling is lost).
      const statePath = join(fx.dir, "state", "intercept.json");
      const state = JSON.parse(await readFile(statePath, "utf8")) as { clean: boolean };
      await writeFile(statePath, JSON.stringify({ ...state, clean: false, diskStamps: [] }));
      await sneak(11 * MiB);
      sentBefore = fx.sink.dataBytes;
      await fx.start(await fx.reopen(), false);
      await caughtUp(fx.tracker);
      assert.ok(fx.logs.some((l) => /did not stop cleanly/.test(l)));
      assert.equal(fx.tracker.progress().disks[0]!.rescannedBytes, 16 * MiB);
      assert.ok(fx.sink.dataBytes - sentBefore <= 64 * KiB, `sent ${fx.sink.dataBytes - sentBefore}`);
      assert.equal(await sha(timelineImage(fx.t)), await sha(readFile(fx.disk)));
    },
  );
});
