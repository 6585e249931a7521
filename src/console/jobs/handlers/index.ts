/** The job handlers `lifeboat up` gives the console. */
import { provider } from "../../../providers/registry.js";
import type { JobHandlers } from "../job-handlers.js";
import { cleanupJob } from "./cleanup-job.js";
import { failbackPrepareJob, returnToNormalJob } from "./failback-jobs.js";
import { launchJob } from "./launch-job.js";

export function jobHandlers(): JobHandlers {
  return {
    LAUNCH: launchJob(provider),
    FAILBACK_PREPARE: failbackPrepareJob,
    RETURN_TO_NORMAL: returnToNormalJob,
    CLEANUP: cleanupJob(provider),
  };
}
