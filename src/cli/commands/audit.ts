/** `lifeboat audit [--project P]`: who did what, newest first. */
import type { AuditEntry } from "../../common/model.js";
import type { Command } from "../command.js";
import { renderTable } from "../output/table.js";
import { encode, JSON_FLAG, PROJECT_FLAG, printJson } from "./common-flags.js";

export const audit: Command = {
  name: "audit",
  summary: "Show the audit log (operator actions, agent registrations)",
  flags: { project: PROJECT_FLAG, json: JSON_FLAG },
  async run(args, io) {
    const project = args.string("project");
    const list = await io
      .client()
      .get<AuditEntry[]>(`/api/audit${project === undefined ? "" : `?project=${encode(project)}`}`);
    if (args.boolean("json")) return printJson(io, list);
    io.stdout.write(
      renderTable(
        ["TIME", "ACTOR", "ACTION", "TARGET"],
        list.map((e) => [e.time, e.actor, e.action, e.target ?? "-"]),
        { rightAlign: [] },
      ),
    );
  },
};
