/** `lifeboat launch MACHINE... --mode test|recovery|cutover [--pit ...] [--wait]`. */
import type { Job } from "../../common/model.js";
import { UsageError } from "../args.js";
import { resolve } from "node:path";
import type { Command } from "../command.js";
import { JSON_FLAG, WAIT_FLAG } from "./common-flags.js";
import { finishJobCommand } from "./wait-for-job.js";

const MODES = ["test", "recovery", "cutover"];

export const launch: Command = {
  name: "launch",
  summary: "Launch machines from a point in time: test (drill), recovery (failover) or cutover (migration)",
  usage: "MACHINE...",
  positionals: { min: 1, max: 500 },
  flags: {
    mode: { type: "string", description: "test, recovery or cutover", placeholder: "MODE" },
    pit: { type: "string", description: "latest (default) or an ISO-8601 time", placeholder: "PIT" },
    provider: {
      type: "string",
      description:
        "Where to launch: export (disk images, the default) or local (QEMU VMs on the console's host)",
      placeholder: "NAME",
    },
    out: {
      type: "string",
      description: "Directory for the launched machines (export, local)",
      placeholder: "DIR",
    },
    wait: WAIT_FLAG,
    json: JSON_FLAG,
  },
  async run(args, io) {
    const mode = args.required("mode", this.name);
    if (!MODES.includes(mode)) throw new UsageError(`Invalid --mode ${mode}: use ${MODES.join(", ")}`);
    const pit = args.string("pit");
    const provider = args.string("provider");
    const out = args.string("out");
    const job = await io.client().post<Job>("/api/launches", {
      machineIds: args.positionals,
      mode,
      ...(pit === undefined ? {} : { pit }),
      ...(provider === undefined ? {} : { provider }),
      // The console resolves paths from its own directory: send the operator's as absolute.
      ...(out === undefined ? {} : { outDir: resolve(out) }),
    });
    return finishJobCommand(io, job, args.boolean("wait"), args.boolean("json"));
  },
};
