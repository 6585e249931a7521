/**
 * `lifeboat snapshot create MACHINE --name NAME [--seq N]` names a PIT (default: the newest)
 * as a snapshot that retention keeps until `lifeboat snapshot delete MACHINE --seq N`.
 */
import type { Command } from "../command.js";
import { UsageError } from "../args.js";
import { renderTable } from "../output/table.js";
import { encode, JSON_FLAG, printJson } from "./common-flags.js";

interface PitView {
  seq: number;
  time: string;
  name: string | null;
  keep: boolean;
}

function seqFlag(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,15}$/.test(text))
    throw new UsageError(`--seq must be a PIT's seq number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function show(pit: PitView): string {
  return renderTable(
    ["SEQ", "TIME", "NAME", "KEPT"],
    [[pit.seq, pit.time, pit.name ?? "", pit.keep ? "until deleted" : "by policy"]],
  );
}

export const snapshotCreate: Command = {
  name: "snapshot create",
  summary: "Name a PIT (default: the newest) as a snapshot kept until deleted",
  usage: "MACHINE --name NAME [--seq N]",
  positionals: { min: 1, max: 1 },
  flags: {
    name: { type: "string", description: "Snapshot name", placeholder: "NAME" },
    seq: { type: "string", description: "The PIT's seq (default: the newest PIT)", placeholder: "N" },
    json: JSON_FLAG,
  },
  async run(args, io) {
    const seq = seqFlag(args.string("seq"));
    const pit = await io
      .client()
      .post<PitView>(`/api/machines/${encode(args.positionals[0] ?? "")}/snapshots`, {
        name: args.required("name", "snapshot create"),
        ...(seq === undefined ? {} : { seq }),
      });
    if (args.boolean("json")) return printJson(io, pit);
    io.stdout.write(show(pit));
  },
};

export const snapshotDelete: Command = {
  name: "snapshot delete",
  summary: "Delete a named snapshot: its PIT is then kept or dropped by the retention policy",
  usage: "MACHINE --seq N",
  positionals: { min: 1, max: 1 },
  flags: {
    seq: { type: "string", description: "The snapshot's seq", placeholder: "N" },
    json: JSON_FLAG,
  },
  async run(args, io) {
    const seq = seqFlag(args.required("seq", "snapshot delete"));
    const pit = await io
      .client()
      .request<PitView>("DELETE", `/api/machines/${encode(args.positionals[0] ?? "")}/snapshots/${seq}`);
    if (args.boolean("json")) return printJson(io, pit);
    io.stdout.write(show(pit));
  },
};
