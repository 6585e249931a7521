/**
 * The vocabulary operators see, named as the seed's product and its successor name it
 * (DESIGN.md, "States the user sees"). Every role imports these; none invents its own.
 */

export const REPLICATION_STATES = [
  "STOPPED",
  "INITIATING",
  "INITIAL_SYNC",
  "BACKLOG",
  "CREATING_SNAPSHOT",
  "CONTINUOUS",
  "PAUSED",
  "RESCAN",
  "STALLED",
  "DISCONNECTED",
] as const;
export type ReplicationState = (typeof REPLICATION_STATES)[number];

/** Steps shown while a machine is INITIATING. */
export const INITIATING_STEPS = [
  "AUTHENTICATE",
  "CREATE_STAGING_DISKS",
  "PAIR_AGENT_WITH_REPLICATOR",
  "CONNECT",
  "START_DATA_TRANSFER",
] as const;
export type InitiatingStep = (typeof INITIATING_STEPS)[number];

export const DR_LIFECYCLE = [
  "NOT_TESTED",
  "TEST_IN_PROGRESS",
  "TESTED_RECENTLY",
  "RECOVERY_IN_PROGRESS",
  "FAILED_OVER",
  "PREPARING_FOR_FAILBACK",
  "FAILBACK_REPLICATING",
  "READY_FOR_FAILBACK_LAUNCH",
  "FAILBACK_IN_PROGRESS",
  "FAILED_BACK",
  "NORMAL",
] as const;
export type DrLifecycle = (typeof DR_LIFECYCLE)[number];

export const MIGRATION_LIFECYCLE = [
  "READY_FOR_TESTING",
  "TESTING",
  "READY_FOR_CUTOVER",
  "CUTTING_OVER",
  "CUTOVER_COMPLETE",
  "ARCHIVED",
] as const;
export type MigrationLifecycle = (typeof MIGRATION_LIFECYCLE)[number];

export type Lifecycle = DrLifecycle | MigrationLifecycle;

export const PROJECT_TYPES = ["dr", "migration"] as const;
export type ProjectType = (typeof PROJECT_TYPES)[number];

export const REPLICATION_DIRECTIONS = ["FAILOVER", "FAILBACK"] as const;
export type ReplicationDirection = (typeof REPLICATION_DIRECTIONS)[number];

export const JOB_STATUSES = ["PENDING", "STARTED", "COMPLETED", "FAILED"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const JOB_KINDS = ["LAUNCH", "TERMINATE", "FAILBACK_PREPARE", "RETURN_TO_NORMAL", "CLEANUP"] as const;
export type JobKind = (typeof JOB_KINDS)[number];

export const LAUNCH_MODES = ["test", "recovery", "cutover"] as const;
export type LaunchMode = (typeof LAUNCH_MODES)[number];
