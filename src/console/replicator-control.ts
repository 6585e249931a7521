/**
 * What the console asks of a replicator. `lifeboat up` runs both in one process and hands
 * the console the replicator object itself; a remote replicator would implement the same
 * interface over its control API. The console never touches the staging store directly.
 */
import type { RetentionOutcome } from "../replicator/pit-retention.js";
import type { RetentionPolicy } from "../store/retention/retention-policy.js";
import type { DiskSpec, Pit, Timeline } from "../store/staging-store.js";

export interface ReplicatorEndpoint {
  readonly id: string;
  /** Host and port agents connect to (TLS, default port 1500). */
  readonly host: string;
  readonly port: number;
}

export interface ReplicatorControl {
  readonly endpoint: ReplicatorEndpoint;

  /**
   * Creates the staging timeline for a newly registered machine and lets the machine's
   * certificate in. Idempotent for the same (machineId, timelineId). `keyScope` (the
   * project) picks the data key that encrypts the timeline at rest.
   */
  assignMachine(
    machineId: string,
    timelineId: string,
    disks: readonly DiskSpec[],
    keyScope?: string,
  ): Promise<void>;

  /** PITs of a timeline, oldest first. */
  pits(timelineId: string): Promise<readonly Pit[]>;

  /** Names a PIT (default: the newest) as a snapshot that retention keeps until deleted. */
  nameSnapshot(timelineId: string, name: string, seq?: number): Promise<Pit>;

  /** Deletes a named snapshot: it becomes an ordinary PIT that retention may drop. */
  deleteSnapshot(timelineId: string, seq: number): Promise<Pit>;

  /**
   * Drops the PITs `policy` no longer keeps at `now` (named snapshots and the newest PIT
   * always stay); the store compacts their data away in the background.
   */
  applyRetention(timelineId: string, policy: RetentionPolicy, now: number): Promise<RetentionOutcome>;

  /** Copy-on-write branch of a timeline at a seq, for a launch. */
  createBranch(branchId: string, timelineId: string, seq: number): Promise<void>;

  /** Drops a branch (test launch cleanup). Idempotent. */
  dropTimeline(timelineId: string): Promise<void>;

  /** Read access for providers. */
  openTimeline(timelineId: string): Timeline;

  /**
   * Prepare for failback: the recovered machine's disks (files written by the launch, in
   * disk order) are captured continuously into `branchId`, and a failback client for the
   * machine is let in to receive them.
   */
  startFailback(machineId: string, branchId: string, recoveredDisks: readonly string[]): Promise<void>;

  /**
   * Launch back on the source: waits until the failback client holds everything the
   * branch has, stops the capture and the failback stream. Resolves with the final seq.
   */
  finishFailback(machineId: string, signal?: AbortSignal): Promise<{ seq: number }>;

  /**
   * Return to normal operation: the machine replicates forward again into `newTimelineId`,
   * a branch of `fromTimelineId` at its last seq, so the agent resumes without a full resync.
   */
  returnToNormal(machineId: string, fromTimelineId: string, newTimelineId: string): Promise<void>;
}

/** What a replicator tells the console. */
export interface ConsoleLink {
  /** An agent or failback client connected or disconnected. */
  connectionChanged(machineId: string, role: "source" | "failback", connected: boolean): void;
  /** A PIT was cut for a machine's timeline. */
  pitCut(machineId: string, timelineId: string, pit: Pit): void;
  /** Failback stream progress for the console's machine view. */
  failbackProgress(
    machineId: string,
    progress: { sentBytes: number; totalBytes: number; caughtUp: boolean },
  ): void;
}
