/** `lifeboat agent`: protect this machine's disks (registers on first run with --token). */
import { join } from "node:path";
import { Agent, type AgentOptions } from "../../agent/agent.js";
import { parseNbdListen, socketIn, type NbdListen } from "../../agent/trackers/intercept/nbd-endpoint.js";
import { TRACKER_NAMES } from "../../agent/trackers/registry.js";
import { UsageError, type ParsedArgs } from "../args.js";
import type { Command } from "../command.js";
import { parseDuration } from "../output/format.js";

export function millis(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const ms = /^\d+ms$/.test(value) ? Number(value.slice(0, -2)) : parseDuration(value) * 1000;
  if (!Number.isFinite(ms) || ms <= 0)
    throw new UsageError(`--${flag} must be a duration like 500ms, 2s or 1m, got ${value}`);
  return ms;
}

export interface TrackerChoice {
  readonly tracker: string;
  readonly trackerOptions: NonNullable<AgentOptions["trackerOptions"]>;
  readonly spoolMiB: number;
}

/** The tracker flags, checked together: intercept-only flags need --tracker intercept. */
export function trackerChoice(args: ParsedArgs, stateDir: string): TrackerChoice {
  const tracker = args.string("tracker") ?? "scan";
  if (!TRACKER_NAMES.includes(tracker))
    throw new UsageError(`--tracker must be one of ${TRACKER_NAMES.join(", ")}, got ${tracker}`);
  const intercept = tracker === "intercept";
  for (const flag of ["nbd-dir", "nbd-listen", "sync-timeout"])
    if (!intercept && args.string(flag) !== undefined)
      throw new UsageError(`--${flag} needs --tracker intercept`);
  if (!intercept && args.boolean("sync")) throw new UsageError("--sync needs --tracker intercept");
  if (args.string("sync-timeout") !== undefined && !args.boolean("sync"))
    throw new UsageError("--sync-timeout needs --sync");
  if (args.string("nbd-dir") !== undefined && args.string("nbd-listen") !== undefined)
    throw new UsageError("Give --nbd-dir or --nbd-listen, not both");
  const spoolMiB = Number(args.string("spool-limit-mib") ?? "1024");
  if (!Number.isInteger(spoolMiB) || spoolMiB < 8)
    throw new UsageError("--spool-limit-mib must be a whole number >= 8");
  if (!intercept) return { tracker, trackerOptions: {}, spoolMiB };
  const listen = args.string("nbd-listen");
  const nbdListen: NbdListen =
    listen !== undefined ? parseNbdListen(listen) : socketIn(args.string("nbd-dir") ?? join(stateDir, "nbd"));
  const timeout = args.string("sync-timeout");
  return {
    tracker,
    trackerOptions: {
      nbdListen,
      ...(args.boolean("sync") ? { sync: true } : {}),
      ...(timeout === undefined ? {} : { syncTimeoutMs: millis(timeout, 0, "sync-timeout") }),
    },
    spoolMiB,
  };
}

export const agent: Command = {
  name: "agent",
  summary:
    "Replicate this machine's disks to the standby (files or block devices; scan or intercept over NBD)",
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
    tracker: {
      type: "string",
      description: `How changes are found: ${TRACKER_NAMES.join(" or ")} (default scan)`,
      placeholder: "NAME",
    },
    "nbd-dir": {
      type: "string",
      description: "intercept: serve the disks on a Unix socket in DIR (default STATE-DIR/nbd)",
      placeholder: "DIR",
    },
    "nbd-listen": {
      type: "string",
      description: "intercept: serve the disks over TCP instead (no TLS, no auth: keep it on loopback)",
      placeholder: "HOST:PORT",
    },
    sync: {
      type: "boolean",
      description: "intercept: acknowledge a write only once the standby holds it durably (RPO zero)",
    },
    "sync-timeout": {
      type: "string",
      description:
        "intercept --sync: after a write waited this long, replicate asynchronously until caught up (default: wait)",
      placeholder: "DURATION",
    },
  },
  async run(args, io) {
    const disks = args.strings("disk");
    const stateDir = args.string("state-dir") ?? "./lifeboat-agent";
    const choice = trackerChoice(args, stateDir);
    const a = await Agent.start({
      ...(args.string("token") ? { token: args.string("token")! } : {}),
      disks,
      ...(args.string("name") ? { name: args.string("name")! } : {}),
      stateDir,
      scanIntervalMs: millis(args.string("scan-interval"), 1000, "scan-interval"),
      statusIntervalMs: millis(args.string("status-interval"), 2000, "status-interval"),
      spoolLimitBytes: choice.spoolMiB * 1024 * 1024,
      tracker: choice.tracker,
      trackerOptions: choice.trackerOptions,
      onExports: (exports) => {
        for (const e of exports) io.stdout.write(`Serving ${e.path} as ${e.uri}\n`);
      },
    });
    io.stdout.write(
      `Protecting ${a.identity.disks.map((d) => d.path).join(", ")} as machine ${a.identity.machineId}\n`,
    );
    io.interruptSignal().addEventListener("abort", () => void a.stop(), { once: true });
    await a.run();
  },
};
