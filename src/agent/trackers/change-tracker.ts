/**
 * A change tracker finds what changed on a machine's disks and hands it to a sink as write
 * batches. Trackers are chosen per agent (`--tracker`); the registry in `registry.ts`
 * lists them. The sink is the replication link to a replicator (agent) or a staging-store
 * timeline (the replicator capturing a recovered machine's disks for failback).
 *
 * Contract:
 * - a batch's extents are WIRE_BLOCK (4096) aligned, which is what the wire protocol and
 *   the staging store require; extents of one batch may overlap and apply in order. (The
 *   scan tracker's happen to be CHUNK_SIZE-aligned; nothing downstream relies on that:
 *   hash comparisons hash chunks of the store, never of batches.)
 * - it marks a consistent point only where the image it sent is crash-consistent across all
 *   the machine's disks (the standby cuts PITs there and nowhere else);
 * - the tracker never treats a chunk as replicated before the sink acknowledged it durable.
 */
import type { Batch, WireExtent } from "../../wire/frames.js";

export interface SubmittedBatch {
  readonly tag: number;
  /** Resolves when the standby holds the batch durably. */
  readonly acked: Promise<void>;
}

export interface ReplicationSink {
  /**
   * Queues a batch; resolves once it is queued (waits while the spool or window is full).
   * An empty batch with `consistent` only marks a consistent point.
   */
  submit(extents: readonly WireExtent[], consistent: boolean, signal?: AbortSignal): Promise<SubmittedBatch>;

  /** Asks the standby which of `hashes` (chunks firstChunk..) differ from what it holds. */
  compare(disk: number, firstChunk: number, hashes: BigUint64Array, signal?: AbortSignal): Promise<boolean[]>;

  /**
   * The tracker's own record that every batch up to `tag` is replicated is now durable, so
   * the sink may forget those batches (the agent's spool deletes their files).
   */
  checkpoint?(tag: number): Promise<void>;

  /**
   * The standby timeline that batches submitted now go to (the replication link's, as of its
   * last WELCOME). A tracker that submits while disconnected checks it, so that it never
   * sends what it meant for one timeline to another.
   */
  readonly timelineId?: string;
}

/** How the tracker's memory relates to the standby's timeline, decided at each (re)connect. */
export interface TrackerBaseline {
  readonly timelineId: string;
  /** The timeline holds nothing: every chunk there is zero. */
  readonly fresh: boolean;
}

/** One disk's figures, in the order of the tracker's disks. */
export interface TrackerDiskProgress {
  readonly totalBytes: number;
  /** Bytes of the disk known to be on the standby (initial sync progress). */
  readonly replicatedBytes: number;
  /** Bytes submitted, not yet acknowledged. */
  readonly backlogBytes: number;
  /** Bytes read by the current (or last) rescan: a compare, or a catch-up pass. */
  readonly rescannedBytes: number;
  /** Where the machine's I/O reaches this disk, for trackers that serve it (intercept: an NBD URI). */
  readonly nbdUri?: string;
}

export interface TrackerProgress {
  readonly disks: readonly TrackerDiskProgress[];
  /** The standby holds the disks as they were at this time (ms since epoch); null before the first full pass. */
  readonly durableAsOf: number | null;
  /** Since when every pass has seen the disks change while reading them (no new PIT); null if the last pass was still. */
  readonly changingSince: number | null;
  /**
   * idle: not prepared; compare: hash lists with the standby; initial: first full copy;
   * rescan: re-reading the disks after a reconnect or restart to find what changed while
   * the link was down (what a spool would otherwise hold); drain: what that found is
   * submitted, not yet all acknowledged; continuous: caught up; backlog: changes wait beyond
   * what the spool holds (intercept: dirty regions to re-send).
   */
  readonly phase: "idle" | "compare" | "initial" | "rescan" | "drain" | "continuous" | "backlog";
  /** Something the operator should know even when replication is healthy (e.g. sync mode degraded). */
  readonly note?: string;
}

export interface ChangeTracker {
  readonly name: string;

  /**
   * The sink must make a batch durable on the agent's disk before `submit` resolves (a
   * fsync'd spool): set by a tracker that cannot find a submitted change again by itself.
   */
  readonly durableSpool?: boolean;

  /**
   * Aligns the tracker with the standby before replication (re)starts: continue, start
   * from all-zero, or compare hashes with the standby (a RESCAN that sends only hash lists).
   */
  prepare(baseline: TrackerBaseline, sink: ReplicationSink, signal: AbortSignal): Promise<void>;

  /** Replicates until the signal aborts (resolves then) or a sink call fails (rejects). */
  run(sink: ReplicationSink, signal: AbortSignal): Promise<void>;

  /** Runs one full pass now and resolves when it is submitted (used to finish failback). */
  passNow(sink: ReplicationSink, signal: AbortSignal): Promise<void>;

  progress(): TrackerProgress;

  /**
   * Records an acknowledged batch that was submitted before a restart (restored from the
   * spool), as if its ack had arrived now. Ignored unless it belongs to `timelineId`, the
   * timeline the tracker's memory describes.
   */
  absorb(batch: Batch, timelineId: string): void;

  /** Makes the tracker's memory durable, then lets the sink checkpoint (on acks and at shutdown). */
  flush(): Promise<void>;

  close(): Promise<void>;
}
