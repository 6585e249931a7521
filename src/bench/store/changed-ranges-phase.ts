/**
 * changedRanges between the first and the last PIT of the hour, for every disk, as
 * failback and return-to-normal ask for it: run several times in one process, each run
 * timed; the suite reports the median (the first run includes the JIT's warm-up).
 */
import { performance } from "node:perf_hooks";
import { definePhase, type PhaseResult } from "../phase.js";
import { Meter } from "../proc-stats.js";
import { MACHINE, openStore } from "./store-access.js";

export interface ChangedRangesParams {
  readonly storeDir: string;
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly runs: number;
  readonly rollThresholdBytes: number | null;
}

export interface ChangedRangesResult extends PhaseResult {
  readonly runSeconds: number[];
  readonly ranges: number;
  readonly bytes: number;
}

export const changedRangesPhase = definePhase(
  "store.changed-ranges",
  async (p: ChangedRangesParams, signal): Promise<ChangedRangesResult> => {
    const store = await openStore(p.storeDir, p.rollThresholdBytes);
    try {
      const timeline = store.timeline(MACHINE);
      const runSeconds: number[] = [];
      let ranges = 0;
      let bytes = 0;
      const meter = Meter.start();
      for (let run = 0; run < p.runs; run++) {
        ranges = 0;
        bytes = 0;
        const t0 = performance.now();
        for (let disk = 0; disk < timeline.info.disks.length; disk++) {
          const changed = await timeline.changedRanges(disk, p.fromSeq, p.toSeq, signal);
          ranges += changed.length;
          for (const r of changed) bytes += r.length;
        }
        runSeconds.push((performance.now() - t0) / 1000);
      }
      return { ...meter.read(), runSeconds, ranges, bytes };
    } finally {
      await store.close();
    }
  },
);
