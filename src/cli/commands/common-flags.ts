/** Flags several commands share, and small output helpers they use. */
import { UsageError, type FlagSpec } from "../args.js";
import type { CommandIo } from "../command.js";

export const JSON_FLAG: FlagSpec = { type: "boolean", description: "Print machine-readable JSON only" };
export const PROJECT_FLAG: FlagSpec = { type: "string", description: "Project id or name", placeholder: "P" };
export const WAIT_FLAG: FlagSpec = {
  type: "boolean",
  description: "Wait for the job; exit non-zero if it fails",
};

export function printJson(io: CommandIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function encode(segment: string): string {
  return encodeURIComponent(segment);
}

/** Splits a `--set key=value` flag value. */
export function splitSet(set: string): { key: string; value: string } {
  const eq = set.indexOf("=");
  if (eq <= 0) throw new UsageError(`Invalid --set ${set}: use key=value`);
  return { key: set.slice(0, eq), value: set.slice(eq + 1) };
}
