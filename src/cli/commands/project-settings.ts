/**
 * `lifeboat project settings P [--set key=value ...]`: shows or changes a project's
 * replication settings. Keys: bandwidthLimitMbps (0 = unlimited), testedRecentlyDays,
 * rpoTargetSeconds, stagingLocation, and retention in its text form
 * (`--set retention=all:1h,10m:24h,1h:7d,1d:30d`), which the table shows the same way.
 */
import { errorMessage } from "../../common/errors.js";
import type { Project, ProjectSettings } from "../../common/model.js";
import { parseRetentionText, formatRetentionPolicy } from "../../store/retention/retention-text.js";
import { UsageError } from "../args.js";
import type { Command } from "../command.js";
import { renderTable } from "../output/table.js";
import { encode, JSON_FLAG, PROJECT_FLAG, printJson, splitSet } from "./common-flags.js";

const NUMERIC = ["bandwidthLimitMbps", "testedRecentlyDays", "rpoTargetSeconds"] as const;
const KEYS = [...NUMERIC, "retention", "stagingLocation"] as const;

type SettingsPatch = { -readonly [K in keyof ProjectSettings]?: ProjectSettings[K] };

export function settingsPatch(sets: readonly string[]): SettingsPatch {
  const patch: SettingsPatch = {};
  for (const set of sets) {
    const { key, value } = splitSet(set);
    if ((NUMERIC as readonly string[]).includes(key)) {
      if (!/^\d+(\.\d+)?$/.test(value)) throw new UsageError(`Invalid --set ${set}: ${key} is a number >= 0`);
      patch[key as (typeof NUMERIC)[number]] = Number(value);
    } else if (key === "retention") {
      try {
        patch.retention = parseRetentionText(value);
      } catch (err) {
        throw new UsageError(errorMessage(err)); // names the item at fault and shows an example
      }
    } else if (key === "stagingLocation") {
      patch.stagingLocation = value;
    } else {
      throw new UsageError(`Unknown project setting ${key}: use one of ${KEYS.join(", ")}`);
    }
  }
  return patch;
}

/** A setting as the table shows it: the retention policy in its text form. */
function settingText(key: string, value: unknown): string {
  if (key === "retention") return formatRetentionPolicy(value as ProjectSettings["retention"]);
  return String(value);
}

export const projectSettings: Command = {
  name: "project settings",
  summary: "Show or change a project's replication settings (bandwidth limit, PIT retention, RPO target)",
  flags: {
    project: PROJECT_FLAG,
    set: {
      type: "string",
      multiple: true,
      description: "Change a setting: key=value (repeatable)",
      placeholder: "KEY=VALUE",
    },
    json: JSON_FLAG,
  },
  async run(args, io) {
    const path = `/api/projects/${encode(args.required("project", this.name))}`;
    const sets = args.strings("set");
    const project =
      sets.length > 0
        ? await io.client().request<Project>("PATCH", path, { settings: settingsPatch(sets) })
        : await io.client().get<Project>(path);
    if (args.boolean("json")) return printJson(io, project.settings);
    io.stdout.write(
      renderTable(
        ["SETTING", "VALUE"],
        Object.entries(project.settings).map(([k, v]) => [k, settingText(k, v)]),
      ),
    );
  },
};
