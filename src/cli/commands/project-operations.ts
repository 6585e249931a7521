/** The project-wide operations that start a job: failback prepare, return-to-normal, cleanup. */
import type { Job } from "../../common/model.js";
import type { Command } from "../command.js";
import { encode, JSON_FLAG, PROJECT_FLAG, WAIT_FLAG } from "./common-flags.js";
import { finishJobCommand } from "./wait-for-job.js";

function projectOperation(name: string, summary: string, route: string): Command {
  return {
    name,
    summary,
    flags: { project: PROJECT_FLAG, wait: WAIT_FLAG, json: JSON_FLAG },
    async run(args, io) {
      const project = args.required("project", name);
      const job = await io.client().post<Job>(`/api/projects/${encode(project)}/${route}`, {});
      return finishJobCommand(io, job, args.boolean("wait"), args.boolean("json"));
    },
  };
}

export const failbackPrepare = projectOperation(
  "failback prepare",
  "Prepare for failback: reverse replication of FAILED_OVER machines",
  "failback/prepare",
);

export const returnToNormal = projectOperation(
  "return-to-normal",
  "Return to normal operation: replicate source to standby again, without a full resync",
  "return-to-normal",
);

export const cleanup = projectOperation(
  "cleanup",
  "Remove launched machines and staging resources the project created",
  "cleanup",
);
