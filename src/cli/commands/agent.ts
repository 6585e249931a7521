/** `lifeboat agent`: protect this machine's disks (registers on first run with --token). */
import { Agent } from "../../agent/agent.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { parseDuration } from "../output/format.js";

export function millis(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const ms = /^\d+ms$/.test(value) ? Number(value.slice(0, -2)) : parseDuration(value) * 1000;
  if (!Number.isFinite(ms) || ms <= 0)
    throw new UsageError(`--${flag} must be a duration like 500ms, 2s or 1m, got ${value}`);
  return ms;
}

export const agent: Command = {
  name: "agent",
  summary: "Replicate this machine's disks to the standby (files or block devices)",
  flags: {
    token: { type: "string", description: "Install token (needed on the first run only)", placeholder: "T" },
    disk: {
      type: "string",
      description: "A disk to protect (repeat for each)",
      placeholder: "PATH",
      multiple: true,
    },
    name: { type: "string", description: "Machine name (default: host name)", placeholder: "NAME" },
    "state-dir": {
      type: "string",
      description: "Agent state (identity, hash maps, spool); default ./lifeboat-agent",
      placeholder: "DIR",
    },
    "scan-interval": {
      type: "string",
      description: "Pause between scan passes (default 1s)",
      placeholder: "DURATION",
    },
    "status-interval": {
      type: "string",
      description: "How often to report to the console (default 2s)",
      placeholder: "DURATION",
    },
    "spool-limit-mib": {
      type: "string",
      description: "Bound of the on-disk spool in MiB (default 1024)",
      placeholder: "N",
    },
  },
  async run(args, io) {
    const disks = args.strings("disk");
    const spool = Number(args.string("spool-limit-mib") ?? "1024");
    if (!Number.isInteger(spool) || spool < 8)
      throw new UsageError("--spool-limit-mib must be a whole number >= 8");
    const a = await Agent.start({
      ...(args.string("token") ? { token: args.string("token")! } : {}),
      disks,
      ...(args.string("name") ? { name: args.string("name")! } : {}),
      stateDir: args.string("state-dir") ?? "./lifeboat-agent",
      scanIntervalMs: millis(args.string("scan-interval"), 1000, "scan-interval"),
      statusIntervalMs: millis(args.string("status-interval"), 2000, "status-interval"),
      spoolLimitBytes: spool * 1024 * 1024,
    });
    io.stdout.write(
      `Protecting ${a.identity.disks.map((d) => d.path).join(", ")} as machine ${a.identity.machineId}\n`,
    );
    io.interruptSignal().addEventListener("abort", () => void a.stop(), { once: true });
    await a.run();
  },
};
