/** `lifeboat project create NAME --type dr|migration`. */
import type { Project } from "../../common/model.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { JSON_FLAG, printJson } from "./common-flags.js";

export const projectCreate: Command = {
  name: "project create",
  summary: "Create a project of type dr (disaster recovery) or migration",
  usage: "NAME",
  positionals: { min: 1, max: 1 },
  flags: {
    type: { type: "string", description: "dr or migration", placeholder: "dr|migration" },
    json: JSON_FLAG,
  },
  async run(args, io) {
    const type = args.required("type", this.name);
    if (type !== "dr" && type !== "migration")
      throw new UsageError(`Invalid --type ${type}: use dr or migration`);
    const project = await io.client().post<Project>("/api/projects", { name: args.positionals[0], type });
    if (args.boolean("json")) printJson(io, project);
    else io.stdout.write(`Created ${project.type} project ${project.name} (${project.id})\n`);
  },
};
