/**
 * Creates a PENDING job record and wakes the runner. Routes validate everything first:
 * once this is called the job exists and will run.
 */
import type { Job, JobMachineResult } from "../../common/model.js";
import type { JobKind } from "../../common/states.js";
import { isoNow, newId, type ApiContext } from "./api-context.js";

export async function submitJob(
  ctx: ApiContext,
  kind: JobKind,
  projectId: string,
  params: Record<string, unknown>,
  machines: readonly JobMachineResult[],
): Promise<Job> {
  const job: Job = {
    id: newId("j"),
    kind,
    projectId,
    status: "PENDING",
    params,
    machines,
    log: [],
    createdAt: isoNow(ctx),
    startedAt: null,
    endedAt: null,
    error: null,
  };
  await ctx.state.createJob(job);
  ctx.wakeJobs();
  return job;
}
