/** `lifeboat pits MACHINE`: the points in time a machine can be launched from. */
import type { Command } from "../command.js";
import { renderTable } from "../output/table.js";
import { encode, JSON_FLAG, printJson } from "./common-flags.js";

export const pits: Command = {
  name: "pits",
  summary: "List a machine's points in time (machine by id or name)",
  usage: "MACHINE",
  positionals: { min: 1, max: 1 },
  flags: { json: JSON_FLAG },
  async run(args, io) {
    const list = await io
      .client()
      .get<{ seq: number; time: string; name: string | null; keep: boolean }[]>(
        `/api/machines/${encode(args.positionals[0] ?? "")}/pits`,
      );
    if (args.boolean("json")) return printJson(io, list);
    if (list.length === 0) {
      io.stdout.write("No PITs yet: the first one is cut when initial sync completes\n");
      return;
    }
    io.stdout.write(
      renderTable(
        ["SEQ", "TIME", "SNAPSHOT"],
        list.map((p) => [
          p.seq,
          p.time,
          p.name === null ? "" : `${p.name}${p.keep ? " (kept until deleted)" : ""}`,
        ]),
      ),
    );
  },
};
