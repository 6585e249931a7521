/**
 * The two long loops the store phases share: a stream of random-write batches with a
 * window of appends in flight (recording each batch's time to its durable ack), and a
 * read of every disk of a timeline at a seq, end to end, in chunks with a few in flight.
 */
import { performance } from "node:perf_hooks";
import type { Timeline } from "../../store/staging-store.js";
import { InFlight } from "../in-flight.js";
import { ProgressLine } from "../progress-line.js";
import { WRITE_BYTES } from "./store-plan.js";
import type { RandomWrites } from "./store-access.js";

export interface StreamShape {
  readonly bytes: number;
  readonly extentsPerBatch: number;
  readonly inFlight: number;
}

export interface StreamResult {
  readonly receivedBytes: number;
  /** Milliseconds from append() to its durable ack, per batch. */
  readonly ackMs: number[];
}

export async function writeRandomStream(
  timeline: Timeline,
  writes: RandomWrites,
  shape: StreamShape,
  label: string,
  signal: AbortSignal,
): Promise<StreamResult> {
  const batchBytes = shape.extentsPerBatch * WRITE_BYTES;
  const batches = Math.ceil(shape.bytes / batchBytes);
  const window = new InFlight(shape.inFlight);
  const progress = new ProgressLine(label, batches * batchBytes);
  const ackMs: number[] = [];
  let acked = 0;
  for (let i = 0; i < batches; i++) {
    signal.throwIfAborted();
    const extents = writes.batch(shape.extentsPerBatch);
    const t0 = performance.now();
    await window.add(
      timeline.append(extents, { tag: i }, signal).then(() => {
        ackMs.push(performance.now() - t0);
        acked += batchBytes;
        progress.update(acked);
      }),
    );
  }
  await window.drain();
  progress.done();
  return { receivedBytes: batches * batchBytes, ackMs };
}

/** Reads every disk of `timeline` at `seq`; returns the bytes read. The data is dropped. */
export async function readWholeTimeline(
  timeline: Timeline,
  seq: number,
  chunkBytes: number,
  inFlight: number,
  label: string,
  signal: AbortSignal,
): Promise<number> {
  const total = timeline.info.disks.reduce((sum, d) => sum + d.sizeBytes, 0);
  const progress = new ProgressLine(label, total);
  const window = new InFlight(inFlight);
  let done = 0;
  for (const [disk, spec] of timeline.info.disks.entries()) {
    for (let offset = 0; offset < spec.sizeBytes; offset += chunkBytes) {
      const length = Math.min(chunkBytes, spec.sizeBytes - offset);
      await window.add(
        timeline.read(disk, offset, length, seq, signal).then((data) => {
          done += data.length;
          progress.update(done);
        }),
      );
    }
  }
  await window.drain();
  progress.done();
  return done;
}
