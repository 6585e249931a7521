/** `lifeboat demo`: a whole DR drill on the embedded default, in a temporary directory. */
import { runDrill } from "../../demo/drill.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";

export const demo: Command = {
  name: "demo",
  summary:
    "Run a whole DR drill end to end (project, agents, sync, test, failover, failback, return to normal)",
  flags: {
    small: { type: "boolean", description: "Small disks (32 and 64 MiB) for a quick run" },
    keep: { type: "boolean", description: "Keep the drill directory afterwards" },
    dir: {
      type: "string",
      description: "Run in this directory (kept) instead of a temporary one",
      placeholder: "DIR",
    },
  },
  async run(args, io) {
    const small = args.boolean("small");
    const dir = args.string("dir");
    if (dir === "") throw new UsageError("--dir needs a directory");
    const result = await runDrill({
      rootMiB: small ? 32 : 256,
      dataMiB: small ? 64 : 1024,
      keep: args.boolean("keep"),
      ...(dir ? { workDir: dir } : {}),
      out: (line) => io.stdout.write(`${line}\n`),
    });
    return result.passed ? 0 : 1;
  },
};
