/**
 * The in-memory index of the journal records not yet rolled into a layer, so that reads
 * and changedRanges see every durable write. One small entry per extent (not per block:
 * a zero extent can cover a whole disk), bucketed by 1 MiB region of the disk so a read
 * only looks at the extents near it; extents spanning more than 16 regions sit in a short
 * list every read checks. Its size is bounded by the roll threshold (each extent costs at
 * least a 24-byte descriptor in the journal).
 */
import { BLOCK_SIZE } from "../staging-store.js";
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
  readonly zero: boolean;
  readonly file: FileRef;
  /** File offset of the data of block `start` (unused for zero extents). */
  readonly filePos: number;
  /** XXH64 of each block of a data extent; empty for a zero extent. */
  readonly sums: BigUint64Array;
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

  /** Indexes one durable extent; `offset` and `length` in bytes, `filePos` where its data starts. */
  addExtent(
    seq: number,
    disk: number,
    offset: number,
    length: number,
    zero: boolean,
    file: FileRef,
    filePos: number,
    sums: BigUint64Array,
  ): void {
    const start = offset / BLOCK_SIZE;
    const entry: JournalEntry = {
      ord: this.nextOrd++,
      seq,
      disk,
      start,
      end: start + length / BLOCK_SIZE,
      zero,
      file,
      filePos,
      sums,
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

  /** Entries recorded in `file` (a sealed segment about to be rolled), in append order. */
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
      for (let b = lo; b < hi; b++) {
        const i = b - first;
        if (plan.filled[i]) continue;
        if (e.zero) plan.fillZero(i);
        else {
          plan.fillFrom(i, e.file, e.filePos + (b - e.start) * BLOCK_SIZE, e.seq, {
            sums: e.sums,
            sumsIndex: b - e.start,
          });
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
