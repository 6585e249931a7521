/**
 * A read in two steps: the journal index, the layers and the parent chain are consulted
 * synchronously and produce a plan (which blocks come from which frame of which file), then
 * the plan runs: each needed frame is read once (adjacent frames of a file in one pread),
 * opened (authenticated or checksummed, decompressed) and the needed blocks copied out.
 * Building the plan without awaiting means a roll that swaps the index mid-read cannot give
 * a read half old and half new sources; the files the plan names are reference-counted so a
 * roll or a compaction can retire a file while a read still holds it.
 */
import { BLOCK_SIZE } from "../staging-store.js";
import { damagedFrame, type FrameContext } from "./frame-context.js";

/** Positional reads of one stored file: a journal segment or a layer's data or index file. */
export interface RandomReader {
  /** Reads exactly `target.length` bytes at `position`; rejects (CorruptionError) when the file is shorter. */
  read(target: Buffer, position: number): Promise<void>;
  close(): Promise<void>;
}

/** An open file shared by reads; closed once retired and no plan holds it. */
export class FileRef {
  private refs = 0;
  private retired = false;
  private closed: Promise<void> | undefined;

  constructor(
    /** For error messages: a path, or an object key with its store. */
    readonly name: string,
    readonly reader: RandomReader,
    /** Opens the frames this file holds (its timeline's codec and aad). */
    readonly frames: FrameContext,
  ) {}

  acquire(): void {
    this.refs++;
  }

  release(): void {
    this.refs--;
    if (this.retired && this.refs === 0) void this.closeOnce();
  }

  /** No new reads will be planned on this file; it closes when the last one finishes. */
  retire(): Promise<void> {
    this.retired = true;
    return this.refs === 0 ? this.closeOnce() : Promise.resolve();
  }

  private closeOnce(): Promise<void> {
    this.closed ??= this.reader.close().catch(() => undefined);
    return this.closed;
  }
}

const READ_CONCURRENCY = 8;
/** Adjacent frames are read together up to this many bytes. */
const MAX_RUN_BYTES = 4 * 1024 * 1024;

/** One frame a plan needs, and the blocks it gives. */
interface Slot {
  readonly offset: number;
  readonly length: number;
  readonly disk: number;
  readonly firstBlock: number;
  readonly blockCount: number;
  readonly seq: number;
  /** Triples: output block, block in frame, block count. */
  readonly copies: number[];
}

export class ReadPlan {
  private readonly slots = new Map<FileRef, Map<number, Slot>>();
  private last: Slot | undefined;
  private lastFile: FileRef | undefined;

  /** `filled[i]` is 1 once block i of the read has a source (or is known to be zero). */
  readonly filled: Uint8Array;
  remaining: number;

  constructor(
    readonly disk: number,
    readonly firstBlock: number,
    blocks: number,
  ) {
    this.filled = new Uint8Array(blocks);
    this.remaining = blocks;
  }

  /** Marks one block zero (a zero extent): the output buffer is already zeroed. */
  fillZero(outBlock: number): void {
    this.filled[outBlock] = 1;
    this.remaining--;
  }

  /**
   * Marks output block `outBlock` as block `blockInFrame` of the frame at `offset` of `file`,
   * which is `length` bytes long and holds blocks `firstBlock..+blockCount` of the plan's
   * disk, written at `seq`.
   */
  fillFrom(
    outBlock: number,
    file: FileRef,
    offset: number,
    blockInFrame: number,
    length: number,
    firstBlock: number,
    blockCount: number,
    seq: number,
  ): void {
    this.filled[outBlock] = 1;
    this.remaining--;
    let slot = this.last;
    if (slot === undefined || slot.offset !== offset || this.lastFile !== file) {
      let byOffset = this.slots.get(file);
      if (byOffset === undefined) {
        file.acquire();
        this.slots.set(file, (byOffset = new Map<number, Slot>()));
      }
      slot = byOffset.get(offset);
      if (slot === undefined) {
        slot = { offset, length, disk: this.disk, firstBlock, blockCount, seq, copies: [] };
        byOffset.set(offset, slot);
      }
      this.last = slot;
      this.lastFile = file;
    }
    const c = slot.copies;
    const n = c.length;
    if (n > 0 && c[n - 3]! + c[n - 1]! === outBlock && c[n - 2]! + c[n - 1]! === blockInFrame) {
      c[n - 1] = c[n - 1]! + 1;
    } else c.push(outBlock, blockInFrame, 1);
  }

  /** Reads and opens every planned frame into `out`. Releases the files in any case. */
  async execute(out: Buffer, signal?: AbortSignal): Promise<void> {
    const runs: Array<{ file: FileRef; slots: Slot[] }> = [];
    for (const [file, byOffset] of this.slots) {
      const sorted = [...byOffset.values()].sort((a, b) => a.offset - b.offset);
      let run: Slot[] = [];
      let runEnd = -1;
      let runBytes = 0;
      for (const slot of sorted) {
        if (slot.offset !== runEnd || runBytes + slot.length > MAX_RUN_BYTES) {
          if (run.length > 0) runs.push({ file, slots: run });
          run = [];
          runBytes = 0;
        }
        run.push(slot);
        runEnd = slot.offset + slot.length;
        runBytes += slot.length;
      }
      if (run.length > 0) runs.push({ file, slots: run });
    }
    let next = 0;
    let failure: { error: unknown } | undefined;
    // A few preads in flight at a time: enough to keep the disk busy, not one promise per frame.
    const worker = async (): Promise<void> => {
      while (failure === undefined && next < runs.length) {
        const run = runs[next++]!;
        try {
          signal?.throwIfAborted();
          await readRun(run.file, run.slots, out);
        } catch (error) {
          failure ??= { error };
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, runs.length) }, worker));
    } finally {
      this.abandon();
    }
    if (failure !== undefined) throw failure.error;
  }

  /** Releases the files without reading (when planning failed, or after executing). */
  abandon(): void {
    // Only now, with no pread in flight, may a retired file close.
    for (const file of this.slots.keys()) file.release();
    this.slots.clear();
    this.last = undefined;
    this.lastFile = undefined;
  }
}

async function readRun(file: FileRef, slots: readonly Slot[], out: Buffer): Promise<void> {
  const first = slots[0]!;
  const lastSlot = slots[slots.length - 1]!;
  const length = lastSlot.offset + lastSlot.length - first.offset;
  // Only long runs take a pooled buffer: a 4 MiB buffer for each small run in flight would
  // cost more memory than the allocation it saves.
  const pooled =
    length >= MIN_POOLED_RUN && length <= MAX_RUN_BYTES
      ? (RUN_BUFFERS.pop() ?? Buffer.allocUnsafeSlow(MAX_RUN_BYTES))
      : undefined;
  const buf = pooled === undefined ? Buffer.allocUnsafe(length) : pooled.subarray(0, length);
  try {
    await file.reader.read(buf, first.offset);
    openRun(file, slots, buf, out);
  } finally {
    if (pooled !== undefined && RUN_BUFFERS.length < MAX_POOLED_RUNS) RUN_BUFFERS.push(pooled);
  }
}

/**
 * Run buffers are reused: a fresh 4 MiB buffer per run costs an mmap, page faults and GC
 * (a third of a PIT read's time when measured). At most MAX_POOLED_RUNS are kept.
 */
const RUN_BUFFERS: Buffer[] = [];
const MAX_POOLED_RUNS = 8;
const MIN_POOLED_RUN = 1024 * 1024;

/** Opens each frame of a run (synchronously: transient plain bytes are copied out at once). */
function openRun(file: FileRef, slots: readonly Slot[], buf: Buffer, out: Buffer): void {
  const first = slots[0]!;
  for (const slot of slots) {
    const at = slot.offset - first.offset;
    let plain: Buffer;
    try {
      plain = file.frames.openTransient(
        buf.subarray(at, at + slot.length),
        slot.disk,
        slot.firstBlock,
        slot.blockCount,
      );
    } catch (err) {
      throw damagedFrame({ file: file.name, ...slot }, err);
    }
    const c = slot.copies;
    for (let i = 0; i < c.length; i += 3) {
      const outBlock = c[i]!;
      const from = c[i + 1]!;
      plain.copy(out, outBlock * BLOCK_SIZE, from * BLOCK_SIZE, (from + c[i + 2]!) * BLOCK_SIZE);
    }
  }
}
