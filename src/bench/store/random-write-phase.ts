/**
 * Random 4 KiB writes on the ingested disk, as CDP sends them: batches of 256 extents at
 * random offsets, several in flight. Throughput is timed to the last durable ack; write
 * amplification counts the storage bytes this process wrote from the first append until
 * the store closed (close waits for background rolls of full journal segments, so their
 * rewrite into layers counts), over the bytes received.
 */
import { summarize, type Summary } from "../percentiles.js";
import { definePhase, type PhaseResult } from "../phase.js";
import { Meter } from "../proc-stats.js";
import { MACHINE, RandomWrites, openStore } from "./store-access.js";
import { writeRandomStream } from "./store-streams.js";

export interface RandomWriteParams {
  readonly storeDir: string;
  readonly bytes: number;
  readonly extentsPerBatch: number;
  readonly inFlight: number;
  readonly seed: number;
  readonly rollThresholdBytes: number | null;
}

export interface RandomWriteResult extends PhaseResult {
  readonly receivedBytes: number;
  /** Storage bytes written by the time the last append was acknowledged. */
  readonly writeBytesAtAck: number;
  /** Close, after the last ack, waiting for background rolls. */
  readonly settleSeconds: number;
  readonly ackMs: Summary;
}

export const randomWritePhase = definePhase(
  "store.random-writes",
  async (p: RandomWriteParams, signal): Promise<RandomWriteResult> => {
    const store = await openStore(p.storeDir, p.rollThresholdBytes);
    try {
      const timeline = store.timeline(MACHINE);
      const writes = new RandomWrites(p.seed, timeline.info.disks[0]?.sizeBytes ?? 0);
      const meter = Meter.start();
      const stream = await writeRandomStream(timeline, writes, p, "random 4 KiB writes", signal);
      const atAck = meter.read();
      await store.close();
      const settled = meter.read();
      return {
        seconds: atAck.seconds,
        writeBytes: settled.writeBytes,
        receivedBytes: stream.receivedBytes,
        writeBytesAtAck: atAck.writeBytes,
        settleSeconds: settled.seconds - atAck.seconds,
        ackMs: summarize(stream.ackMs),
      };
    } finally {
      await store.close();
    }
  },
);
