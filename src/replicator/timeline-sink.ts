/**
 * A ReplicationSink that writes straight into a staging timeline: the replicator uses it
 * to capture a recovered machine's disks into its branch during failback, with the same
 * scan tracker the agent runs. A batch is acknowledged when the append is durable; a
 * consistent point offers a PIT on the branch.
 */
import type { Timeline } from "../store/staging-store.js";
import type { WireExtent } from "../wire/frames.js";
import type { ReplicationSink, SubmittedBatch } from "../agent/trackers/change-tracker.js";
import type { PitCutter } from "./pit-cutter.js";
import { timelineHashes } from "./timeline-hashes.js";

export class TimelineSink implements ReplicationSink {
  private tag = 0;
  private chain: Promise<number>;

  constructor(
    private readonly timeline: Timeline,
    private readonly pits: PitCutter,
  ) {
    this.chain = Promise.resolve(timeline.lastSeq());
  }

  private pending = 0;

  async submit(
    extents: readonly WireExtent[],
    consistent: boolean,
    signal?: AbortSignal,
  ): Promise<SubmittedBatch> {
    // Bound memory: at most a few batches wait for the store.
    if (this.pending >= 4) await this.chain.catch(() => undefined);
    const tag = ++this.tag;
    this.pending++;
    this.chain = this.chain.then((seq) =>
      extents.length === 0 ? seq : this.timeline.append(extents, {}, signal),
    );
    const acked = this.chain.then(
      (seq) => {
        this.pending--;
        if (consistent) this.pits.offer(seq);
      },
      (err: unknown) => {
        this.pending--;
        throw err;
      },
    );
    acked.catch(() => undefined);
    return { tag, acked };
  }

  async compare(
    disk: number,
    firstChunk: number,
    hashes: BigUint64Array,
    signal?: AbortSignal,
  ): Promise<boolean[]> {
    const seq = await this.chain;
    const ours = await timelineHashes(this.timeline, disk, firstChunk, hashes.length, seq, signal);
    return Array.from(hashes, (h, i) => h !== ours[i]);
  }

  /** Waits for every submitted batch to be durable. */
  async drain(): Promise<number> {
    return this.chain;
  }
}
