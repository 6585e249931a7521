/** `lifeboat jobs [--project P]`. */
import type { Job } from "../../common/model.js";
import type { Command } from "../command.js";
import { renderTable } from "../output/table.js";
import { encode, JSON_FLAG, PROJECT_FLAG, printJson } from "./common-flags.js";

export const jobs: Command = {
  name: "jobs",
  summary: "List jobs, newest first",
  flags: { project: PROJECT_FLAG, json: JSON_FLAG },
  async run(args, io) {
    const project = args.string("project");
    const list = await io
      .client()
      .get<Job[]>(`/api/jobs${project === undefined ? "" : `?project=${encode(project)}`}`);
    if (args.boolean("json")) return printJson(io, list);
    io.stdout.write(
      renderTable(
        ["ID", "KIND", "STATUS", "MACHINES", "CREATED", "ERROR"],
        list.map((j) => [j.id, j.kind, j.status, j.machines.length, j.createdAt, j.error ?? ""]),
      ),
    );
  },
};
