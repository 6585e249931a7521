/** `lifeboat project list`. */
import type { Project } from "../../common/model.js";
import { formatRetentionPolicy } from "../../store/retention/retention-text.js";
import type { Command } from "../command.js";
import { renderTable } from "../output/table.js";
import { JSON_FLAG, printJson } from "./common-flags.js";

export const projectList: Command = {
  name: "project list",
  summary: "List projects",
  flags: { json: JSON_FLAG },
  async run(args, io) {
    const projects = await io.client().get<Project[]>("/api/projects");
    if (args.boolean("json")) return printJson(io, projects);
    io.stdout.write(
      renderTable(
        ["NAME", "ID", "TYPE", "DIRECTION", "RPO TARGET", "RETENTION", "CREATED"],
        projects.map((p) => [
          p.name,
          p.id,
          p.type,
          p.direction,
          `${p.settings.rpoTargetSeconds}s`,
          formatRetentionPolicy(p.settings.retention),
          p.createdAt,
        ]),
      ),
    );
  },
};
