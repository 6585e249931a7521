/**
 * Sequential ingest, the way an agent's initial sync sends a disk: read the image in 4 MiB
 * pieces, each a batch of 64 KiB extents (all-zero ones as zero extents), several appends in
 * flight, timed from the first read to the last durable ack. Compared with
 * `dd bs=4M conv=fsync` of the same image. Storage bytes are counted until the store has
 * closed, so background rolls of full journal segments count.
 */
import { open } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { InFlight } from "../in-flight.js";
import { summarize, type Summary } from "../percentiles.js";
import { definePhase, type PhaseResult } from "../phase.js";
import { Meter } from "../proc-stats.js";
import { ProgressLine } from "../progress-line.js";
import { MACHINE, chunkExtents, openStore, readFully } from "./store-access.js";

export interface IngestParams {
  readonly storeDir: string;
  readonly image: string;
  readonly imageBytes: number;
  readonly extentBytes: number;
  readonly batchBytes: number;
  readonly inFlight: number;
  readonly rollThresholdBytes: number | null;
}

export interface IngestResult extends PhaseResult {
  /** Storage bytes written by the time the last append was acknowledged. */
  readonly writeBytesAtAck: number;
  /** Bytes sent as data extents; the rest went as zero extents. */
  readonly dataBytes: number;
  readonly batches: number;
  readonly ackMs: Summary;
}

export const ingestPhase = definePhase(
  "store.ingest",
  async (p: IngestParams, signal): Promise<IngestResult> => {
    const store = await openStore(p.storeDir, p.rollThresholdBytes);
    try {
      const timeline = await store.createTimeline(MACHINE, [{ id: "disk0", sizeBytes: p.imageBytes }]);
      const image = await open(p.image, "r");
      try {
        const window = new InFlight(p.inFlight);
        const progress = new ProgressLine("ingest", p.imageBytes);
        const ackMs: number[] = [];
        let dataBytes = 0;
        let acked = 0;
        let batches = 0;
        const meter = Meter.start();
        for (let offset = 0; offset < p.imageBytes; offset += p.batchBytes) {
          signal.throwIfAborted();
          const chunk = Buffer.allocUnsafe(Math.min(p.batchBytes, p.imageBytes - offset));
          await readFully(image, chunk, offset);
          const extents = chunkExtents(chunk, offset, p.extentBytes);
          for (const e of extents) if (e.kind === "data") dataBytes += e.length;
          const t0 = performance.now();
          await window.add(
            timeline.append(extents, { tag: batches++ }, signal).then(() => {
              ackMs.push(performance.now() - t0);
              acked += chunk.length;
              progress.update(acked);
            }),
          );
        }
        await window.drain();
        const atAck = meter.read();
        progress.done();
        await store.close();
        const settled = meter.read();
        return {
          seconds: atAck.seconds,
          writeBytes: settled.writeBytes,
          writeBytesAtAck: atAck.writeBytes,
          dataBytes,
          batches,
          ackMs: summarize(ackMs),
        };
      } finally {
        await image.close();
      }
    } finally {
      await store.close();
    }
  },
);
