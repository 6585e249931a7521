/**
 * The replicator's end of a source agent's stream (docs/wire-protocol.md, "source agent"):
 * appends each BATCH to the machine's staging timeline, acknowledges it once durable, in tag
 * order, answers HASHES with HASH_DIFF, and offers consistent seqs to the PIT cutter.
 * Appends are applied strictly in order, each only after the previous one is durable. A frame that does not
 * parse closes the connection before any of it reaches the store.
 */
import { chunkCount } from "../common/chunk-hash.js";
import { ProtocolError, errorMessage } from "../common/errors.js";
import type { Timeline } from "../store/staging-store.js";
import type { FrameSocket } from "../wire/frame-socket.js";
import { FrameType, PROTOCOL_VERSION, type Batch, type Frame, type Hashes } from "../wire/frames.js";
import type { PitCutter } from "./pit-cutter.js";
import { timelineHashes } from "./timeline-hashes.js";

export interface SourceSessionOptions {
  readonly conn: FrameSocket;
  readonly frames: AsyncGenerator<Frame>;
  readonly machineId: string;
  readonly timeline: Timeline;
  readonly pits: PitCutter;
  readonly windowBytes: number;
  readonly log: (message: string) => void;
}

export class SourceSession {
  private chain: Promise<number>;
  private lastTag: number;

  constructor(private readonly o: SourceSessionOptions) {
    this.lastTag = o.timeline.lastTag() ?? 0;
    this.chain = Promise.resolve(o.timeline.lastSeq());
  }

  async run(signal: AbortSignal): Promise<void> {
    const { conn, timeline } = this.o;
    await conn.send({
      type: FrameType.WELCOME,
      body: {
        version: PROTOCOL_VERSION,
        timelineId: timeline.info.id,
        lastTag: timeline.lastTag() ?? null,
        lastSeq: timeline.lastSeq(),
        fresh: timeline.lastSeq() === 0 && timeline.info.base === undefined,
        windowBytes: this.o.windowBytes,
      },
    });
    try {
      for await (const frame of this.o.frames) {
        signal.throwIfAborted();
        if (frame.type === FrameType.BATCH) this.onBatch(frame.body);
        else if (frame.type === FrameType.HASHES) await this.onHashes(frame.body, signal);
        else throw new ProtocolError(`Unexpected frame type ${frame.type} from a source agent`);
      }
      await this.chain.catch(() => undefined);
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.o.log(`Closing ${this.o.machineId}: ${err.message}`);
        conn.fail("PROTOCOL", err.message);
      } else if (!conn.closed) {
        this.o.log(`Closing ${this.o.machineId}: ${errorMessage(err)}`);
        conn.fail("INTERNAL", errorMessage(err));
      }
    } finally {
      // Appends already started are valid, acknowledged or not: let them finish.
      await this.chain.catch(() => undefined);
    }
  }

  private onBatch(batch: Batch): void {
    const { conn, timeline } = this.o;
    const disks = timeline.info.disks;
    for (const e of batch.extents) {
      const disk = disks[e.disk];
      if (!disk) throw new ProtocolError(`BATCH ${batch.tag}: unknown disk index ${e.disk}`);
      if (e.offset + e.length > disk.sizeBytes)
        throw new ProtocolError(
          `BATCH ${batch.tag}: extent at ${e.offset}+${e.length} is beyond disk ${disk.id}`,
        );
    }
    const duplicate = batch.tag <= this.lastTag;
    if (!duplicate) this.lastTag = batch.tag;
    // Appends run one after another: batch N+1 is stored only once batch N is durable, so a
    // failed batch can never be skipped by a later one whose tag would then be taken as
    // "everything up to here is durable" on resume. (Group commit still merges machines.)
    const previous = this.chain;
    this.chain = previous.then((seq) =>
      duplicate || batch.extents.length === 0 ? seq : timeline.append(batch.extents, { tag: batch.tag }),
    );
    this.chain
      .then(async (seq) => {
        if (batch.consistent) this.o.pits.offer(seq);
        if (!conn.closed) await conn.send({ type: FrameType.ACK, body: { tag: batch.tag, seq } });
      })
      .catch((err: unknown) => {
        const cause = (err as { cause?: { code?: string } }).cause;
        const full = cause?.code === "ENOSPC" || (err as { code?: string }).code === "ENOSPC";
        const message = full
          ? `The standby is out of space: the staging store is full and batch ${batch.tag} of ${this.o.machineId} was not stored (nor anything after it); free space on the replicator, the agent retries by itself`
          : `Storing batch ${batch.tag} of ${this.o.machineId} failed: ${errorMessage(err)}`;
        this.o.log(message);
        conn.fail(full ? "STORAGE" : "INTERNAL", message);
      });
  }

  private async onHashes(h: Hashes, signal: AbortSignal): Promise<void> {
    const { timeline, conn } = this.o;
    const disk = timeline.info.disks[h.disk];
    if (!disk) throw new ProtocolError(`HASHES: unknown disk index ${h.disk}`);
    if (h.firstChunk + h.hashes.length > chunkCount(disk.sizeBytes))
      throw new ProtocolError(`HASHES: chunks beyond disk ${disk.id}`);
    const seq = await this.chain;
    const ours = await timelineHashes(timeline, h.disk, h.firstChunk, h.hashes.length, seq, signal);
    const differs: boolean[] = [];
    for (let i = 0; i < h.hashes.length; i++) differs.push(ours[i] !== h.hashes[i]);
    await conn.send({ type: FrameType.HASH_DIFF, body: { disk: h.disk, firstChunk: h.firstChunk, differs } });
  }
}
