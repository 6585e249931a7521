/**
 * The plug-in point for what jobs do. The console validates a request, records a PENDING
 * job and the runner calls the handler for its kind with a JobContext; the handler owns
 * the work and the machine state transitions it implies (lifecycle, lastTestAt, launched
 * machines, failbackBranchId, timelineId, project direction). The runner owns the job's
 * own status: STARTED before the handler, COMPLETED when it resolves, FAILED (with the
 * error message) when it rejects. Handlers must honour `signal` (the console is closing).
 */
import type { Job, JobMachineResult } from "../../common/model.js";
import type { JobKind } from "../../common/states.js";
import type { ReplicatorControl } from "../replicator-control.js";
import type { StateStore } from "../state/state-store.js";

export interface JobContext {
  readonly job: Job;
  readonly state: StateStore;
  readonly replicator: ReplicatorControl;
  readonly signal: AbortSignal;
  /** Appends a line to the job's log (shown by `lifeboat job ID`). */
  log(message: string): Promise<void>;
  /**
   * Records the result for one machine: the fields given are merged over what the job
   * already holds for it (the launch route pre-fills pitSeq and pitTime).
   */
  setMachine(result: JobMachineResult): Promise<void>;
}

export type JobHandler = (ctx: JobContext) => Promise<void>;

export type JobHandlers = Partial<Record<JobKind, JobHandler>>;
