/**
 * One simulated hour of CDP on the ingested disk: a PIT at its start, then for each of
 * 3600 simulated seconds a batch of random 4 KiB writes and, once that batch is durable,
 * a PIT at its seq (several seconds in flight). The store stamps PITs with the wall clock,
 * so the hour passes as fast as the store allows; the real span is reported. Write
 * amplification here includes the PITs' own cost (the manifest each cut rewrites).
 */
import { performance } from "node:perf_hooks";
import type { Pit } from "../../store/staging-store.js";
import { InFlight } from "../in-flight.js";
import { summarize, type Summary } from "../percentiles.js";
import { definePhase, type PhaseResult } from "../phase.js";
import { Meter } from "../proc-stats.js";
import { ProgressLine } from "../progress-line.js";
import { WRITE_BYTES } from "./store-plan.js";
import { MACHINE, RandomWrites, openStore } from "./store-access.js";

export interface PitHourParams {
  readonly storeDir: string;
  readonly seconds: number;
  readonly writesPerSecond: number;
  readonly inFlight: number;
  readonly seed: number;
  readonly rollThresholdBytes: number | null;
}

export interface PitHourResult extends PhaseResult {
  readonly receivedBytes: number;
  /** Catching up on compaction after the hour (reopen, compact(), close), not part of `seconds`. */
  readonly compactSeconds: number;
  readonly compactWriteBytes: number;
  /** PITs of the timeline from the hour's first to its last, both included. */
  readonly pits: number;
  /** Seq of the PIT at simulated second 0, seconds/2 and the last second. */
  readonly startSeq: number;
  readonly middleSeq: number;
  readonly endSeq: number;
  /** Wall-clock time between the first and the last PIT of the hour. */
  readonly realSpanSeconds: number;
  readonly ackMs: Summary;
  /** cutPit() call to its durable resolve, per PIT. */
  readonly cutMs: Summary;
}

export const pitHourPhase = definePhase(
  "store.pit-hour",
  async (p: PitHourParams, signal): Promise<PitHourResult> => {
    const store = await openStore(p.storeDir, p.rollThresholdBytes);
    try {
      const timeline = store.timeline(MACHINE);
      const writes = new RandomWrites(p.seed, timeline.info.disks[0]?.sizeBytes ?? 0);
      const window = new InFlight(p.inFlight);
      const progress = new ProgressLine("PIT hour (simulated seconds)", p.seconds, "items");
      const ackMs: number[] = [];
      const cutMs: number[] = [];
      const cut: Pit[] = [];
      let done = 0;
      const meter = Meter.start();
      const first = await timeline.cutPit();
      cut[0] = first;
      for (let second = 1; second <= p.seconds; second++) {
        signal.throwIfAborted();
        const extents = writes.batch(p.writesPerSecond);
        const task = async (): Promise<void> => {
          const t0 = performance.now();
          const seq = await timeline.append(extents, { tag: second }, signal);
          const t1 = performance.now();
          cut[second] = await timeline.cutPit(seq);
          cutMs.push(performance.now() - t1);
          ackMs.push(t1 - t0);
          progress.update(++done);
        };
        await window.add(task());
      }
      await window.drain();
      const atLastPit = meter.read();
      progress.done();
      await store.close();
      const settled = meter.read();
      // The hour is compressed into seconds here; over a real hour compaction runs alongside.
      // Let it catch up before the PIT is read, and report what that cost.
      const compacting = Meter.start();
      const again = await openStore(p.storeDir, p.rollThresholdBytes);
      try {
        await again.timeline(MACHINE).compact();
      } finally {
        await again.close();
      }
      const compaction = compacting.read();
      const last = cut[p.seconds] ?? first;
      return {
        compactSeconds: compaction.seconds,
        compactWriteBytes: compaction.writeBytes,
        seconds: atLastPit.seconds,
        writeBytes: settled.writeBytes,
        receivedBytes: p.seconds * p.writesPerSecond * WRITE_BYTES,
        pits: timeline.pits().filter((pit) => pit.seq >= first.seq && pit.seq <= last.seq).length,
        startSeq: first.seq,
        middleSeq: (cut[Math.floor(p.seconds / 2)] ?? first).seq,
        endSeq: last.seq,
        realSpanSeconds: (last.time - first.time) / 1000,
        ackMs: summarize(ackMs),
        cutMs: summarize(cutMs),
      };
    } finally {
      await store.close();
    }
  },
);
