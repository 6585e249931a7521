/**
 * The in-memory index of the journal records not yet rolled into a layer, so that reads
 * and changedRanges see every durable write. One small entry per extent (not per block:
 * a zero extent can cover a whole disk), with the byte ends of its frames in a typed array,
 * bucketed by 1 MiB region of the disk so a read only looks at the extents near it; extents
 * spanning more than 16 regions sit in a short list every read checks. Its size is bounded
 * by the roll threshold (each extent costs at least a 24-byte descriptor in the journal).
 */
import { BLOCK_SIZE } from "../staging-store.js";
import { BLOCKS_PER_FRAME } from "./frame-context.js";
import type { FileRef, ReadPlan } from "./read-plan.js";

const REGION_BLOCKS = 256; // 256 blocks of 4 KiB = 1 MiB
/** Extents over 16 MiB go to the short list every read checks, not into 17+ buckets. */
const MAX_BUCKETS_PER_ENTRY = 16;

export interface JournalEntry {
  /** Increasing in append order, and in extent order within a batch: a later extent wins. */
  readonly ord: number;
  readonly seq: number;
  readonly disk: number;
  /** Block range [start, end). */
  readonly start: number;
  readonly end: number;
  readonly file: FileRef;
  /** File offset of the extent's first frame (unused for zero extents). */
  readonly filePos: number;
  /**
   * Data extent: byte end of each frame relative to `filePos`; frame k holds blocks
   * `start + 16k ..`. Zero extent: undefined.
   */
  readonly frameEnds: Uint32Array | undefined;
}

/** Byte offset (from filePos) and length of frame `k` of a data entry. */
export function frameSpan(entry: JournalEntry, k: number): { at: number; length: number } {
  const ends = entry.frameEnds as Uint32Array;
  const at = k === 0 ? 0 : (ends[k - 1] ?? 0);
  return { at, length: (ends[k] ?? 0) - at };
}

interface DiskIndex {
  readonly buckets: Map<number, JournalEntry[]>;
  readonly wide: JournalEntry[];
}

export class JournalIndex {
  private entries: JournalEntry[] = [];
  private disks: DiskIndex[];
  private nextOrd = 0;

  constructor(private readonly diskCount: number) {
    this.disks = JournalIndex.emptyDisks(diskCount);
  }

  private static emptyDisks(count: number): DiskIndex[] {
    return Array.from({ length: count }, () => ({ buckets: new Map<number, JournalEntry[]>(), wide: [] }));
  }

  /** Indexes one durable extent; `offset` and `length` in bytes, `filePos` where its first frame starts. */
  addExtent(
    seq: number,
    disk: number,
    offset: number,
    length: number,
    file: FileRef,
    filePos: number,
    frameEnds: Uint32Array | undefined,
  ): void {
    const start = offset / BLOCK_SIZE;
    const entry: JournalEntry = {
      ord: this.nextOrd++,
      seq,
      disk,
      start,
      end: start + length / BLOCK_SIZE,
      file,
      filePos,
      frameEnds,
    };
    this.entries.push(entry);
    this.insert(entry);
  }

  private insert(entry: JournalEntry): void {
    const index = this.disks[entry.disk];
    if (index === undefined) return;
    const first = Math.floor(entry.start / REGION_BLOCKS);
    const last = Math.floor((entry.end - 1) / REGION_BLOCKS);
    if (last - first + 1 > MAX_BUCKETS_PER_ENTRY) {
      index.wide.push(entry);
      return;
    }
    for (let r = first; r <= last; r++) {
      let bucket = index.buckets.get(r);
      if (bucket === undefined) index.buckets.set(r, (bucket = []));
      bucket.push(entry);
    }
  }

  /** Entries recorded in `file` (a sealed segment about to be rolled), in append (and file) order. */
  entriesOf(file: FileRef): JournalEntry[] {
    return this.entries.filter((e) => e.file === file);
  }

  /** Drops the entries of a rolled segment. */
  removeFile(file: FileRef): void {
    this.entries = this.entries.filter((e) => e.file !== file);
    this.disks = JournalIndex.emptyDisks(this.diskCount);
    for (const entry of this.entries) this.insert(entry);
  }

  /** Fills the plan's unfilled blocks with the newest journal version at or below `seq`. */
  plan(plan: ReadPlan, seq: number): void {
    const index = this.disks[plan.disk];
    if (index === undefined || plan.remaining === 0) return;
    const first = plan.firstBlock;
    const end = first + plan.filled.length;
    const candidates: JournalEntry[] = [];
    const consider = (e: JournalEntry): void => {
      if (e.seq <= seq && e.start < end && e.end > first) candidates.push(e);
    };
    const firstRegion = Math.floor(first / REGION_BLOCKS);
    const lastRegion = Math.floor((end - 1) / REGION_BLOCKS);
    for (let r = firstRegion; r <= lastRegion; r++) index.buckets.get(r)?.forEach(consider);
    index.wide.forEach(consider);
    // An entry can sit in several buckets; sort newest first and skip repeats.
    candidates.sort((a, b) => b.ord - a.ord);
    let previous = -1;
    for (const e of candidates) {
      if (e.ord === previous) continue;
      previous = e.ord;
      const lo = Math.max(e.start, first);
      const hi = Math.min(e.end, end);
      const ends = e.frameEnds;
      if (ends === undefined) {
        for (let b = lo; b < hi; b++) if (!plan.filled[b - first]) plan.fillZero(b - first);
      } else {
        for (
          let k = Math.floor((lo - e.start) / BLOCKS_PER_FRAME);
          e.start + k * BLOCKS_PER_FRAME < hi;
          k++
        ) {
          const frameFirst = e.start + k * BLOCKS_PER_FRAME;
          const frameCount = Math.min(BLOCKS_PER_FRAME, e.end - frameFirst);
          const at = k === 0 ? 0 : (ends[k - 1] ?? 0);
          const length = (ends[k] ?? 0) - at;
          const bEnd = Math.min(frameFirst + frameCount, hi);
          for (let b = Math.max(frameFirst, lo); b < bEnd; b++) {
            const i = b - first;
            if (plan.filled[i]) continue;
            plan.fillFrom(i, e.file, e.filePos + at, b - frameFirst, length, frameFirst, frameCount, e.seq);
          }
        }
      }
      if (plan.remaining === 0) return;
    }
  }

  /** Block ranges [start, end) of `disk` written with seq in (fromSeq, toSeq], unsorted. */
  changed(disk: number, fromSeq: number, toSeq: number): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    for (const e of this.entries) {
      if (e.disk === disk && e.seq > fromSeq && e.seq <= toSeq) out.push([e.start, e.end]);
    }
    return out;
  }
}
