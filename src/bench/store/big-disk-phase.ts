/**
 * Memory on a big sparse disk: a fresh store with one 64 GiB disk receives 1 GiB of random
 * 4 KiB writes (batches of 256, several in flight), a PIT is cut, and the whole disk is read
 * back at that PIT end to end. The child's peak RSS covers both; the peak after the writes
 * is reported too.
 */
import { definePhase, type PhaseResult } from "../phase.js";
import { Meter, peakRss } from "../proc-stats.js";
import { BIG_MACHINE, RandomWrites, openStore } from "./store-access.js";
import { readWholeTimeline, writeRandomStream } from "./store-streams.js";

export interface BigDiskParams {
  readonly storeDir: string;
  readonly diskBytes: number;
  readonly bytes: number;
  readonly extentsPerBatch: number;
  readonly inFlight: number;
  readonly seed: number;
  readonly chunkBytes: number;
  readonly readInFlight: number;
  readonly rollThresholdBytes: number | null;
}

export interface BigDiskResult extends PhaseResult {
  readonly receivedBytes: number;
  readonly writeSeconds: number;
  readonly readSeconds: number;
  readonly readBytes: number;
  readonly peakRssAfterWritesBytes: number;
}

export const bigDiskPhase = definePhase(
  "store.big-disk",
  async (p: BigDiskParams, signal): Promise<BigDiskResult> => {
    const store = await openStore(p.storeDir, p.rollThresholdBytes);
    try {
      const timeline = await store.createTimeline(BIG_MACHINE, [{ id: "disk0", sizeBytes: p.diskBytes }]);
      const writes = new RandomWrites(p.seed, p.diskBytes);
      const meter = Meter.start();
      const stream = await writeRandomStream(timeline, writes, p, "big disk: random writes", signal);
      const writeSeconds = meter.read().seconds;
      const peakRssAfterWritesBytes = peakRss() ?? 0;
      const pit = await timeline.cutPit();
      const t0 = meter.read().seconds;
      const readBytes = await readWholeTimeline(
        timeline,
        pit.seq,
        p.chunkBytes,
        p.readInFlight,
        "big disk: read PIT",
        signal,
      );
      const total = meter.read();
      return {
        ...total,
        receivedBytes: stream.receivedBytes,
        writeSeconds,
        readSeconds: total.seconds - t0,
        readBytes,
        peakRssAfterWritesBytes,
      };
    } finally {
      await store.close();
    }
  },
);
