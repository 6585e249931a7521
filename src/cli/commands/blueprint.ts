/**
 * `lifeboat blueprint MACHINE [--set key=value ...]`: shows or changes how a machine is
 * launched. Keys: instanceType, cpus, memoryMiB, network, subnet, ipPolicy, fixedIp,
 * securityGroups (comma-separated), tags.NAME (one tag), mac, diskBus, bootMode. "null"
 * clears cpus, memoryMiB, fixedIp, mac.
 */
import type { Blueprint } from "../../common/model.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { renderTable } from "../output/table.js";
import { encode, JSON_FLAG, printJson, splitSet } from "./common-flags.js";

const KEYS = [
  "instanceType",
  "cpus",
  "memoryMiB",
  "network",
  "subnet",
  "ipPolicy",
  "fixedIp",
  "securityGroups",
  "mac",
  "diskBus",
  "bootMode",
];

/** Turns `--set` values into a blueprint patch; tags merge into `currentTags`. */
export function blueprintPatch(
  sets: readonly string[],
  currentTags: Readonly<Record<string, string>>,
): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  let tags: Record<string, string> | undefined;
  for (const set of sets) {
    const { key, value } = splitSet(set);
    if (key.startsWith("tags.") && key.length > 5) {
      tags ??= { ...currentTags };
      if (value === "") delete tags[key.slice(5)];
      else tags[key.slice(5)] = value;
    } else if (key === "cpus" || key === "memoryMiB") {
      if (value !== "null" && !/^\d+$/.test(value))
        throw new UsageError(`Invalid --set ${set}: ${key} is a whole number`);
      patch[key] = value === "null" ? null : Number(value);
    } else if (key === "fixedIp" || key === "mac") {
      patch[key] = value === "null" || value === "" ? null : value;
    } else if (key === "securityGroups") {
      patch[key] = value
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "");
    } else if (KEYS.includes(key)) {
      patch[key] = value;
    } else {
      throw new UsageError(`Unknown blueprint key ${key}: use one of ${KEYS.join(", ")}, tags.NAME`);
    }
  }
  if (tags !== undefined) patch["tags"] = tags;
  return patch;
}

export const blueprint: Command = {
  name: "blueprint",
  summary: "Show or change a machine's launch blueprint",
  usage: "MACHINE",
  positionals: { min: 1, max: 1 },
  flags: {
    set: {
      type: "string",
      multiple: true,
      description: "Change a field: key=value (repeatable)",
      placeholder: "KEY=VALUE",
    },
    json: JSON_FLAG,
  },
  async run(args, io) {
    const path = `/api/machines/${encode(args.positionals[0] ?? "")}/blueprint`;
    let current = await io.client().get<Blueprint>(path);
    const sets = args.strings("set");
    if (sets.length > 0) {
      current = await io.client().request<Blueprint>("PUT", path, blueprintPatch(sets, current.tags));
    }
    if (args.boolean("json")) return printJson(io, current);
    const rows = Object.entries(current).map(([key, value]) => [
      key,
      value === null ? "-" : typeof value === "object" ? JSON.stringify(value) : String(value),
    ]);
    io.stdout.write(renderTable(["FIELD", "VALUE"], rows, { rightAlign: [] }));
  },
};
