/** The job handlers `lifeboat up` gives the console. */
import { provider } from "../../../providers/registry.js";
import type { JobHandlers } from "../job-handlers.js";
import { cleanupJob } from "./cleanup-job.js";
import { failbackPrepareJob, returnToNormalJob } from "./failback-jobs.js";
import { launchJob } from "./launch-job.js";

export interface JobHandlerOptions {
  /** Where launched machines go when a launch names no directory. */
  readonly launchDir: string;
}

export function jobHandlers(options: JobHandlerOptions): JobHandlers {
  return {
    LAUNCH: launchJob(provider, options.launchDir),
    FAILBACK_PREPARE: failbackPrepareJob,
    RETURN_TO_NORMAL: returnToNormalJob,
    CLEANUP: cleanupJob(provider),
  };
}
