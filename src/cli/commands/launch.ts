/**
 * `lifeboat launch MACHINE... --mode test|recovery|cutover [--pit ...] [--provider export]
 * [--format raw|qcow2|vhd|vhd-dynamic|vmdk] [--out DIR] [--wait]`.
 */
import type { Job } from "../../common/model.js";
import { UsageError } from "../args.js";
import { resolve } from "node:path";
import { IMAGE_FORMATS, isImageFormat } from "../../providers/image-format.js";
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
    pit: {
      type: "string",
      description: "latest (default), an ISO-8601 time, or snapshot:NAME",
      placeholder: "PIT",
    },
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
    format: {
      type: "string",
      description: `Image format for the export provider: ${IMAGE_FORMATS.join(", ")} (default raw)`,
      placeholder: "FORMAT",
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
    const format = args.string("format");
    if (format !== undefined && !isImageFormat(format)) {
      throw new UsageError(`Invalid --format ${format}: use ${IMAGE_FORMATS.join(", ")}`);
    }
    const job = await io.client().post<Job>("/api/launches", {
      machineIds: args.positionals,
      mode,
      ...(pit === undefined ? {} : { pit }),
      ...(provider === undefined ? {} : { provider }),
      // The console resolves paths from its own directory: send the operator's as absolute.
      ...(out === undefined ? {} : { outDir: resolve(out) }),
      ...(format === undefined ? {} : { format }),
    });
    return finishJobCommand(io, job, args.boolean("wait"), args.boolean("json"));
  },
};
