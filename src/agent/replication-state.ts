/**
 * Which replication state the agent reports (DESIGN.md, "States the user sees"), from what
 * the link and the tracker say, and the ETA that goes with it. Kept apart from the agent so
 * that the rules can be read, and tested, in one place:
 * - STALLED: the replicator refuses to store (disk full), or nothing is acknowledged for a
 *   long time with data in flight; the reason says which. It holds until an ACK comes.
 * - PAUSED: the replicator will not take this role now (machine failed over).
 * - DISCONNECTED: no connection to the replicator (after the first one), with the error.
 * - RESCAN: comparing hash lists with the standby, or re-reading the disks after a
 *   reconnect or restart to find what changed while the link was down.
 * - BACKLOG: data found and spooled but not yet acknowledged while catching up (re-sent
 *   spool, what a rescan found); in CDP, when what is unacknowledged would take more than
 *   BACKLOG_SECONDS to send at the recent rate, or is more than BACKLOG_BYTES; and while
 *   the tracker keeps changes beyond what the spool holds (intercept: dirty regions).
 * - CONTINUOUS otherwise, once the initial sync is done.
 */
import type { ReplicationState } from "../common/states.js";
import type { TrackerProgress } from "./trackers/change-tracker.js";

/** Unacknowledged bytes above which an agent in CDP reports BACKLOG. */
export const BACKLOG_BYTES = 64 * 1024 * 1024;
/** An agent in CDP whose unacknowledged data takes longer than this to send reports BACKLOG. */
export const BACKLOG_SECONDS = 5;

export interface LinkObservation {
  readonly connected: boolean;
  /** A replicator has welcomed the agent at least once (it knows its timeline). */
  readonly everConnected: boolean;
  /** The replicator refused this role for now (e.g. the machine is failed over). */
  readonly paused: boolean;
  /** Why the standby takes no data although the agent has some: set means STALLED. */
  readonly stalled: string | undefined;
  /** The tracker's phase; undefined before it is open. */
  readonly phase: TrackerProgress["phase"] | undefined;
  /** Bytes submitted or spooled and not yet acknowledged. */
  readonly unackedBytes: number;
  /** Seconds to send them at the recent rate (0 when none; null when no rate is known). */
  readonly drainSeconds: number | null;
  /** Batches spooled before the current connection are still being re-sent. */
  readonly resending: boolean;
}

export function replicationState(o: LinkObservation): ReplicationState {
  if (o.stalled !== undefined) return "STALLED";
  if (!o.connected) {
    if (o.paused) return "PAUSED";
    return o.everConnected && o.phase !== undefined ? "DISCONNECTED" : "INITIATING";
  }
  switch (o.phase) {
    case undefined:
    case "idle":
      return "INITIATING";
    case "compare":
    case "rescan":
      return "RESCAN";
    case "initial":
      return "INITIAL_SYNC";
    case "drain":
      return o.unackedBytes > 0 || o.resending ? "BACKLOG" : "CONTINUOUS";
    case "backlog":
      return "BACKLOG";
    case "continuous": {
      const slow = o.drainSeconds !== null && o.drainSeconds > BACKLOG_SECONDS;
      return o.resending || slow || o.unackedBytes > BACKLOG_BYTES ? "BACKLOG" : "CONTINUOUS";
    }
  }
}

export interface EtaInput {
  readonly state: ReplicationState;
  /** INITIAL_SYNC: fraction of the disks on the standby (0..1) and seconds since the sync began. */
  readonly syncedFraction: number;
  readonly syncSeconds: number;
  /** RESCAN: bytes still to read, and the recent read rate (bytes/s). */
  readonly toRead: number;
  readonly readRate: number;
  /** Seconds to send what waits for an ACK (null: no rate known). */
  readonly drainSeconds: number | null;
}

/** Seconds until the agent is caught up, or null when it is not catching up or no rate is known yet. */
export function etaSeconds(i: EtaInput): number | null {
  const send = i.drainSeconds;
  switch (i.state) {
    case "INITIAL_SYNC":
      return i.syncedFraction > 0.01 ? (i.syncSeconds * (1 - i.syncedFraction)) / i.syncedFraction : null;
    case "RESCAN": {
      const read = i.toRead === 0 ? 0 : i.readRate > 0 ? i.toRead / i.readRate : null;
      return read === null || send === null ? null : read + send;
    }
    case "BACKLOG":
      return send;
    default:
      return null;
  }
}
