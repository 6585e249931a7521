/** `lifeboat failback-client`: receive a recovered machine's data onto the original disks. */
import { runFailbackClient } from "../../agent/failback-client.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { formatBytes } from "../output/format.js";
import { JSON_FLAG } from "./common-flags.js";

export const failbackClient: Command = {
  name: "failback-client",
  summary: "Receive a failed-over machine's data back onto its original disks (only what differs)",
  flags: {
    token: { type: "string", description: "Install token of the project", placeholder: "T" },
    machine: { type: "string", description: "Machine id (see `lifeboat machines`)", placeholder: "ID" },
    disk: {
      type: "string",
      description: "An original disk, in the machine's disk order (repeat)",
      placeholder: "PATH",
      multiple: true,
    },
    json: JSON_FLAG,
  },
  async run(args, io) {
    const disks = args.strings("disk");
    if (disks.length === 0)
      throw new UsageError("Give the original disks with --disk, in the machine's disk order");
    const result = await runFailbackClient({
      token: args.required("token", "failback-client"),
      machineId: args.required("machine", "failback-client"),
      disks,
      signal: io.interruptSignal(),
    });
    // One line, so that a log holding stderr too can still be read line by line.
    if (args.boolean("json")) {
      io.stdout.write(`${JSON.stringify({ event: "failback-complete", ...result })}\n`);
      return;
    }
    io.stdout.write(
      `Failback complete at seq ${result.seq}: received ${formatBytes(result.receivedBytes)} of changed blocks for ${formatBytes(result.diskBytes)} of disks\n`,
    );
  },
};
