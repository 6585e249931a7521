/** `lifeboat job ID`: a job's status, per-machine results with RTO, and its log. */
import type { Job } from "../../common/model.js";
import type { Command } from "../command.js";
import { formatDuration } from "../output/format.js";
import { renderTable } from "../output/table.js";
import { encode, JSON_FLAG, printJson } from "./common-flags.js";

export const job: Command = {
  name: "job",
  summary: "Show a job: status, per-machine results with RTO, log",
  usage: "JOB_ID",
  positionals: { min: 1, max: 1 },
  flags: { json: JSON_FLAG },
  async run(args, io) {
    const j = await io.client().get<Job>(`/api/jobs/${encode(args.positionals[0] ?? "")}`);
    if (args.boolean("json")) return printJson(io, j);
    const lines = [
      `Job ${j.id}: ${j.kind} ${j.status}`,
      `Created ${j.createdAt}, started ${j.startedAt ?? "-"}, ended ${j.endedAt ?? "-"}`,
    ];
    if (j.error !== null) lines.push(`Error: ${j.error}`);
    io.stdout.write(`${lines.join("\n")}\n`);
    if (j.machines.length > 0) {
      io.stdout.write(
        `\n${renderTable(
          ["MACHINE", "STATUS", "PIT", "RTO", "DISKS", "ERROR"],
          j.machines.map((m) => [
            m.machineId,
            m.status,
            m.pitTime ?? (m.pitSeq === undefined ? "-" : `seq ${m.pitSeq}`),
            formatDuration(m.rtoSeconds),
            m.disks?.join(", ") ?? "-",
            m.error ?? "",
          ]),
          { rightAlign: [3] },
        )}`,
      );
    }
    if (j.log.length > 0) {
      io.stdout.write(`\nLog:\n${j.log.map((l) => `${l.time}  ${l.message}`).join("\n")}\n`);
    }
  },
};
