/**
 * Reads one PIT of the hour end to end, every disk of the timeline, in 4 MiB reads with a
 * few in flight, as a launch or an export would; the data is dropped. Compared with
 * `cat IMAGE > /dev/null`, with the page cache in the same state for both (page-cache.ts).
 */
import { definePhase, type PhaseResult } from "../phase.js";
import { Meter } from "../proc-stats.js";
import { MACHINE, openStore } from "./store-access.js";
import { readWholeTimeline } from "./store-streams.js";

export interface PitReadParams {
  readonly storeDir: string;
  readonly seq: number;
  readonly chunkBytes: number;
  readonly inFlight: number;
  readonly rollThresholdBytes: number | null;
}

export interface PitReadResult extends PhaseResult {
  readonly bytes: number;
  /** Opening the store before the read (journal replay), not part of `seconds`. */
  readonly openSeconds: number;
}

export const pitReadPhase = definePhase(
  "store.pit-read",
  async (p: PitReadParams, signal): Promise<PitReadResult> => {
    const opening = Meter.start();
    const store = await openStore(p.storeDir, p.rollThresholdBytes);
    try {
      const openSeconds = opening.read().seconds;
      const timeline = store.timeline(MACHINE);
      const meter = Meter.start();
      const bytes = await readWholeTimeline(timeline, p.seq, p.chunkBytes, p.inFlight, "read PIT", signal);
      return { ...meter.read(), bytes, openSeconds };
    } finally {
      await store.close();
    }
  },
);
