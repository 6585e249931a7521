/** `lifeboat machines [--project P]`: replication state and lifecycle of every machine. */
import type { MachineView } from "../../console/api/machine-view.js";
import type { Command } from "../command.js";
import { formatBytes, formatDuration, formatPercent } from "../output/format.js";
import { renderTable } from "../output/table.js";
import { encode, JSON_FLAG, PROJECT_FLAG, printJson } from "./common-flags.js";

/** The state, with what goes with it: the INITIATING step, the BACKLOG bytes, the ETA while catching up. */
function stateText(m: MachineView): string {
  const r = m.replication;
  if (r.state === "INITIATING" && r.step !== undefined) return `INITIATING (${r.step})`;
  const details: string[] = [];
  if (r.state === "BACKLOG") details.push(formatBytes(r.disks.reduce((n, d) => n + d.backlogBytes, 0)));
  if (r.etaSeconds !== null && r.state !== "CONTINUOUS") details.push(`ETA ${formatDuration(r.etaSeconds)}`);
  return details.length > 0 ? `${r.state} (${details.join(", ")})` : r.state;
}

/** The machines table, then each machine's reason for its state, if it has one. */
export function renderMachines(list: readonly MachineView[]): string {
  const table = renderTable(
    ["NAME", "ID", "REPLICATION", "PROGRESS", "LAG", "LIFECYCLE"],
    list.map((m) => [
      m.name,
      m.id,
      stateText(m),
      formatPercent(m.replication.progressPercent),
      `${formatDuration(m.replication.lagSeconds)}${m.rpoBreached ? " (RPO!)" : ""}`,
      m.lifecycle,
    ]),
    { rightAlign: [3, 4] },
  );
  // A machine may be CONTINUOUS and still have something to say (no new PIT, for one).
  const reasons = list
    .filter((m) => m.replication.reason !== undefined)
    .map((m) => `${m.name}: ${m.replication.reason}\n`);
  return table + reasons.join("");
}

export const machines: Command = {
  name: "machines",
  summary: "List machines with replication state, progress, lag and lifecycle",
  flags: { project: PROJECT_FLAG, json: JSON_FLAG },
  async run(args, io) {
    const project = args.string("project");
    const list = await io
      .client()
      .get<MachineView[]>(`/api/machines${project === undefined ? "" : `?project=${encode(project)}`}`);
    if (args.boolean("json")) return printJson(io, list);
    io.stdout.write(renderMachines(list));
  },
};
