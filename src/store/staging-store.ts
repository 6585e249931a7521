/**
 * The staging store's contract: the one interface the replicator, the providers and the
 * failback server use. The layered implementation lives beside it (`layered/`); the
 * on-disk format is specified in docs/store-format.md.
 *
 * Model. A *timeline* holds the disks of one machine (or one consistency group) under one
 * sequence clock. Every durable write batch gets the next sequence number; a point in time
 * (PIT) is a sequence number recorded with its wall-clock time, so a PIT is crash-consistent
 * across every disk of the timeline. A *branch* is a timeline whose base is (parent, seq):
 * it reads through to the parent at that seq for every block it has not written itself,
 * and its own sequence numbers continue from the base seq. Launched machines write to
 * branches; failback replicates from one.
 *
 * Addressing is in bytes, but every offset and length must be a multiple of BLOCK_SIZE.
 */

import type { Extent } from "../common/extent.js";

export const BLOCK_SIZE = 4096;

export interface DiskSpec {
  /** Stable disk id within the timeline, e.g. "disk0". */
  readonly id: string;
  /** Multiple of BLOCK_SIZE. */
  readonly sizeBytes: number;
}

/** One extent of a write batch (the same type the wire protocol carries). */
export type { Extent };

export interface AppendOptions {
  /**
   * Opaque, monotonically increasing number from the writer (the agent's batch id). Stored
   * atomically with the batch; `lastTag` returns the newest durable one so a writer that
   * reconnects can resume exactly after the last acknowledged batch.
   */
  readonly tag?: number;
}

export interface Pit {
  readonly seq: number;
  /** Milliseconds since the epoch, when the PIT was cut. */
  readonly time: number;
  readonly label?: string;
  /** A named snapshot: retention never drops it; only an operator's delete does. */
  readonly keep?: boolean;
}

export interface BranchBase {
  readonly timeline: string;
  readonly seq: number;
}

export interface TimelineInfo {
  readonly id: string;
  readonly disks: readonly DiskSpec[];
  readonly base?: BranchBase;
  readonly createdAt: number;
}

/** A changed range, in bytes, block aligned. */
export interface ChangedRange {
  readonly offset: number;
  readonly length: number;
}

export interface Timeline {
  readonly info: TimelineInfo;

  /**
   * Appends a batch and resolves with its sequence number once it is durable (fsync'd):
   * after the promise resolves the batch survives any crash. Concurrent appends are
   * group-committed. Rejects, changing nothing, when an extent is out of range or
   * unaligned (UserError) or the disk is full (the error's cause carries ENOSPC).
   */
  append(extents: readonly Extent[], options?: AppendOptions, signal?: AbortSignal): Promise<number>;

  /** Newest durable sequence number (the base seq for a branch that has written nothing). */
  lastSeq(): number;

  /** Newest durable tag from AppendOptions, or undefined if none was ever written. */
  lastTag(): number | undefined;

  /**
   * Reads `length` bytes of disk `disk` at `offset` as they were at sequence `seq`
   * (default: lastSeq()). Blocks never written read as zeros. Throws UserError for a seq
   * beyond lastSeq() or below the branch base, CorruptionError if stored data fails its check.
   */
  read(disk: number, offset: number, length: number, seq?: number, signal?: AbortSignal): Promise<Buffer>;

  /**
   * Ranges of disk `disk` written by this timeline in (fromSeq, toSeq], coalesced and sorted
   * by offset. For a branch, changedRanges(d, base.seq, lastSeq()) is the branch-vs-PIT diff.
   * Does not look into the parent.
   */
  changedRanges(disk: number, fromSeq: number, toSeq: number, signal?: AbortSignal): Promise<ChangedRange[]>;

  /**
   * Records a PIT at `seq` (default lastSeq()), durably. Idempotent for an existing seq.
   * Rejects a seq beyond lastSeq().
   */
  cutPit(seq?: number, label?: string): Promise<Pit>;

  /** PITs, oldest first. */
  pits(): readonly Pit[];

  /**
   * Names an existing PIT and sets whether retention must keep it (a named snapshot), or
   * with `keep: false` and no label turns it back into an ordinary PIT. Durable on resolve.
   * UserError 404 when there is no PIT at `seq`.
   */
  markPit(seq: number, mark: { readonly label?: string; readonly keep: boolean }): Promise<Pit>;

  /**
   * Forgets these PITs (retention). Missing seqs are ignored. Background compaction then
   * drops the versions no remaining PIT or branch base needs and returns their space; after
   * that, reads and diffs at a dropped seq reject with UserError 410.
   */
  dropPits(seqs: readonly number[]): Promise<void>;

  /** True while a read at `seq` is exact (not yet given up to compaction). */
  readable(seq: number): boolean;

  /** Runs compaction now, until its policy is met (tests, benchmarks, an operator's request). */
  compact(): Promise<{ readonly layersIn: number; readonly layersOut: number; readonly freedBytes: number }>;
}

export interface CreateTimelineOptions {
  /**
   * Whose data key seals the timeline's data at rest: the project. A store that encrypts
   * needs it; a store that does not ignores it. Branches use their parent's key.
   */
  readonly keyScope?: string;
}

export interface StagingStore {
  /** Creates an empty timeline (every block reads as zero). Rejects an existing id (UserError 409). */
  createTimeline(id: string, disks: readonly DiskSpec[], options?: CreateTimelineOptions): Promise<Timeline>;

  /**
   * Creates a copy-on-write branch of `base.timeline` at `base.seq`. Cheap: copies no data.
   * The seq must be <= the parent's lastSeq() and readable there. A branch pins its parent:
   * dropTimeline of a parent with live branches rejects (UserError 409), and the base seq
   * stays exact through compaction while the branch lives.
   */
  createBranch(id: string, base: BranchBase): Promise<Timeline>;

  /** Opens an existing timeline; throws UserError 404 if there is none. */
  timeline(id: string): Timeline;

  has(id: string): boolean;

  list(): readonly TimelineInfo[];

  /** Drops a timeline and its data. Idempotent: a missing id is not an error. */
  dropTimeline(id: string): Promise<void>;

  /** Flushes and closes every file; the store is unusable afterwards. */
  close(): Promise<void>;
}
