/**
 * The replicator's end of a failback stream (docs/wire-protocol.md, "failback client"): the
 * recovered machine's branch is the source. The client first sends the hashes of its own
 * disks; only chunks that differ from the branch are sent. After that the session tails
 * the branch: whatever the recovered machine writes (captured into the branch) follows as
 * the changed ranges between the last sent seq and the newest. `finish` drains and ends.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { ZERO_CHUNK_HASH, chunkCount, hashChunk, isZero } from "../common/chunk-hash.js";
import { ProtocolError, errorMessage } from "../common/errors.js";
import type { Timeline } from "../store/staging-store.js";
import type { FrameSocket } from "../wire/frame-socket.js";
import { CHUNK_SIZE, FrameType, PROTOCOL_VERSION, type Frame, type WireExtent } from "../wire/frames.js";

const BATCH_BYTES = 4 * 1024 * 1024;

export interface FailbackProgress {
  readonly sentBytes: number;
  readonly totalBytes: number;
  readonly caughtUp: boolean;
}

export class FailbackSession {
  private sentSeq = -1;
  private ackedSeq = -1;
  private sentBytes = 0;
  private finishing: { resolve(seq: number): void; reject(err: Error): void } | null = null;
  private ended = false;

  constructor(
    private readonly conn: FrameSocket,
    private readonly frames: AsyncGenerator<Frame>,
    private readonly branch: Timeline,
    private readonly onProgress: (p: FailbackProgress) => void,
    private readonly log: (message: string) => void,
  ) {}

  get caughtUp(): boolean {
    return this.ackedSeq >= 0 && this.ackedSeq === this.branch.lastSeq();
  }

  async run(signal: AbortSignal): Promise<void> {
    const { conn, branch } = this;
    const s0 = branch.lastSeq();
    await conn.send({
      type: FrameType.WELCOME,
      body: {
        version: PROTOCOL_VERSION,
        timelineId: branch.info.id,
        lastTag: null,
        lastSeq: s0,
        fresh: false,
        windowBytes: 0,
      },
    });
    const remaining = branch.info.disks.map((d) => chunkCount(d.sizeBytes));
    const reading = this.readLoop(remaining, s0, signal);
    try {
      await reading.compared;
      await this.sendBatch([], s0, true);
      this.sentSeq = s0;
      while (!signal.aborted && !this.ended) {
        await this.sendNewer(signal);
        if (this.finishing && this.ackedSeq === this.sentSeq && this.sentSeq === branch.lastSeq()) {
          await conn.send({ type: FrameType.FINISH, body: { seq: this.sentSeq } });
          await reading.finished;
          this.finishing.resolve(this.sentSeq);
          this.finishing = null;
          break;
        }
        await sleep(200, undefined, { signal }).catch(() => undefined);
      }
    } catch (err) {
      const message = errorMessage(err);
      this.log(`Failback stream of ${branch.info.id} ended: ${message}`);
      if (err instanceof ProtocolError) conn.fail("PROTOCOL", message);
      this.finishing?.reject(err instanceof Error ? err : new Error(message));
      this.finishing = null;
    } finally {
      this.ended = true;
      conn.close();
      await reading.done.catch(() => undefined);
    }
  }

  /** Reads HASHES (answering each with the differing chunks), then ACKs and FINISHED. */
  private readLoop(
    remaining: number[],
    s0: number,
    signal: AbortSignal,
  ): { compared: Promise<void>; finished: Promise<void>; done: Promise<void> } {
    let comparedResolve!: () => void;
    let comparedReject!: (e: Error) => void;
    const compared = new Promise<void>((res, rej) => ((comparedResolve = res), (comparedReject = rej)));
    let finishedResolve!: () => void;
    let finishedReject!: (e: Error) => void;
    const finished = new Promise<void>((res, rej) => ((finishedResolve = res), (finishedReject = rej)));
    compared.catch(() => undefined);
    finished.catch(() => undefined);
    if (remaining.every((r) => r === 0)) comparedResolve();
    const done: Promise<void> = (async () => {
      try {
        for await (const frame of this.frames) {
          if (frame.type === FrameType.HASHES) {
            const { disk, firstChunk, hashes } = frame.body;
            const left = remaining[disk];
            if (left === undefined) throw new ProtocolError(`HASHES: unknown disk index ${disk}`);
            const chunks = chunkCount(this.branch.info.disks[disk]!.sizeBytes);
            if (firstChunk + hashes.length > chunks || hashes.length > left)
              throw new ProtocolError(`HASHES: chunks beyond disk ${disk}`);
            await this.sendDiffering(disk, firstChunk, hashes, s0, signal);
            remaining[disk] = left - hashes.length;
            if (remaining.every((r) => r === 0)) comparedResolve();
          } else if (frame.type === FrameType.ACK) {
            this.ackedSeq = Math.max(this.ackedSeq, frame.body.tag);
            this.report();
          } else if (frame.type === FrameType.FINISHED) {
            finishedResolve();
          } else {
            throw new ProtocolError(`Unexpected frame type ${frame.type} from a failback client`);
          }
        }
        throw new Error("Failback client closed the connection");
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err));
        comparedReject(e);
        finishedReject(e);
        this.ended = true;
        this.finishing?.reject(e);
        this.finishing = null;
        if (err instanceof ProtocolError) this.conn.fail("PROTOCOL", e.message);
        throw e;
      }
    })();
    // `done` is awaited in run's finally; until then its rejection must not go unhandled.
    done.catch(() => undefined);
    return { compared, finished, done };
  }

  private async sendDiffering(
    disk: number,
    firstChunk: number,
    theirs: BigUint64Array,
    seq: number,
    signal: AbortSignal,
  ): Promise<void> {
    const size = this.branch.info.disks[disk]!.sizeBytes;
    let extents: WireExtent[] = [];
    let bytes = 0;
    const PIECE = 64; // chunks read at once: 4 MiB
    for (let i = 0; i < theirs.length; i += PIECE) {
      const start = (firstChunk + i) * CHUNK_SIZE;
      const end = Math.min(size, (firstChunk + Math.min(i + PIECE, theirs.length)) * CHUNK_SIZE);
      const buf = await this.branch.read(disk, start, end - start, seq, signal);
      for (let at = 0; at < buf.length; at += CHUNK_SIZE) {
        const piece = buf.subarray(at, Math.min(at + CHUNK_SIZE, buf.length));
        const ours = hashChunk(piece);
        if (ours === theirs[i + at / CHUNK_SIZE]) continue;
        if (ours === ZERO_CHUNK_HASH && isZero(piece)) {
          extents.push({ disk, offset: start + at, length: piece.length, kind: "zero" });
        } else {
          extents.push({
            disk,
            offset: start + at,
            length: piece.length,
            kind: "data",
            data: Buffer.from(piece),
          });
          bytes += piece.length;
        }
        if (bytes >= BATCH_BYTES || extents.length >= 1024) {
          await this.sendBatch(extents, seq, false);
          extents = [];
          bytes = 0;
        }
      }
    }
    if (extents.length > 0) await this.sendBatch(extents, seq, false);
  }

  /** Sends what the branch gained since the last sent seq. */
  private async sendNewer(signal: AbortSignal): Promise<void> {
    const to = this.branch.lastSeq();
    if (to <= this.sentSeq) return;
    for (let disk = 0; disk < this.branch.info.disks.length; disk++) {
      const ranges = await this.branch.changedRanges(disk, this.sentSeq, to, signal);
      let extents: WireExtent[] = [];
      let bytes = 0;
      for (const r of ranges) {
        for (let at = r.offset; at < r.offset + r.length; at += BATCH_BYTES) {
          const length = Math.min(BATCH_BYTES, r.offset + r.length - at);
          const data = await this.branch.read(disk, at, length, to, signal);
          extents.push(
            isZero(data)
              ? { disk, offset: at, length, kind: "zero" }
              : { disk, offset: at, length, kind: "data", data },
          );
          bytes += length;
          if (bytes >= BATCH_BYTES || extents.length >= 1024) {
            await this.sendBatch(extents, to, false);
            extents = [];
            bytes = 0;
          }
        }
      }
      if (extents.length > 0) await this.sendBatch(extents, to, false);
    }
    await this.sendBatch([], to, true);
    this.sentSeq = to;
  }

  private async sendBatch(extents: WireExtent[], tag: number, consistent: boolean): Promise<void> {
    for (const e of extents) if (e.kind === "data") this.sentBytes += e.length;
    await this.conn.send({ type: FrameType.BATCH, body: { tag, consistent, extents } });
    this.report();
  }

  private report(): void {
    const totalBytes = this.branch.info.disks.reduce((s, d) => s + d.sizeBytes, 0);
    this.onProgress({ sentBytes: this.sentBytes, totalBytes, caughtUp: this.caughtUp });
  }

  /** Resolves with the final seq once the client holds everything and confirmed FINISHED. */
  finish(): Promise<number> {
    if (this.ended) return Promise.reject(new Error("Failback client is not connected"));
    return new Promise((resolve, reject) => (this.finishing = { resolve, reject }));
  }
}
