/**
 * The operator-facing text form of a retention policy, for the CLI and tables:
 * `all:1h,10m:24h,1h:7d,1d:30d` reads "every PIT for 1 hour, then one per 10 minutes up to
 * 24 hours old, hourly up to 7 days, daily up to 30 days". The first item is always
 * `all:WINDOW`; each further item is `EVERY:FOR`. Durations are whole numbers with a unit
 * (s, m, h, d); a bare 0 is allowed. Formatting picks the largest unit that is exact, so
 * formatting then parsing gives the same policy.
 */
import { UserError } from "../../common/errors.js";
import { checkRetentionPolicy, type RetentionPolicy, type RetentionTier } from "./retention-policy.js";

const UNITS: readonly (readonly [string, number])[] = [
  ["d", 86_400],
  ["h", 3600],
  ["m", 60],
  ["s", 1],
];

/** Longer texts are refused before any parsing (8 tiers fit in far less). */
const MAX_TEXT_LENGTH = 256;
const EXAMPLE = "all:1h,10m:24h,1h:7d,1d:30d";

export function formatRetentionDuration(seconds: number): string {
  if (seconds === 0) return "0s";
  for (const [unit, size] of UNITS) {
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

export function formatRetentionPolicy(policy: RetentionPolicy): string {
  return [
    `all:${formatRetentionDuration(policy.keepAllSeconds)}`,
    ...policy.tiers.map(
      (t) => `${formatRetentionDuration(t.everySeconds)}:${formatRetentionDuration(t.forSeconds)}`,
    ),
  ].join(",");
}

/**
 * Parses the text form and validates the policy (the same rules as parseRetentionPolicy).
 * Throws UserError naming the item at fault, e.g.
 * `Invalid retention policy: the interval of tier 2 "15m:7d" must be a multiple of 10m ...`.
 */
export function parseRetentionText(text: string): RetentionPolicy {
  const quoted = JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text);
  const bad = (why: string): never => {
    throw new UserError(`Invalid retention policy ${quoted}: ${why}; for example ${EXAMPLE}`);
  };
  if (text.length > MAX_TEXT_LENGTH) bad(`longer than ${MAX_TEXT_LENGTH} characters`);
  const items = text.split(",").map((item) => item.trim());
  const duration = (raw: string, item: string): number => {
    const match = /^(\d{1,9})([smhd]?)$/.exec(raw.trim());
    const unit = UNITS.find(([u]) => u === match?.[2]);
    if (match === null || (unit === undefined && match[1] !== "0")) {
      return bad(`"${raw.trim()}" in "${item}" is not a duration like 90s, 10m, 24h or 30d`);
    }
    return Number(match[1]) * (unit?.[1] ?? 0);
  };
  const pair = (item: string): readonly [string, string] => {
    const parts = item.split(":");
    if (parts.length !== 2 || parts[0] === undefined || parts[1] === undefined) {
      return bad(`"${item}" is not of the form EVERY:FOR (or all:WINDOW first)`);
    }
    return [parts[0].trim(), parts[1].trim()];
  };
  const [first = "", ...rest] = items;
  const [all, window] = pair(first);
  if (all !== "all") bad(`the first item must be all:WINDOW, got "${first}"`);
  const tiers = rest.map((item): RetentionTier => {
    const [every, forAge] = pair(item);
    if (every === "all") bad(`all:WINDOW must come first and only once, got "${item}"`);
    return { everySeconds: duration(every, item), forSeconds: duration(forAge, item) };
  });
  const policy: RetentionPolicy = { keepAllSeconds: duration(window, first), tiers };
  checkRetentionPolicy(policy, {
    field: (field) => {
      if (field[0] === "keepAllSeconds") return `the keep-all window "${first}"`;
      if (field.length === 1) return "the tier list";
      const what = field[2] === "everySeconds" ? "interval" : "window";
      return `the ${what} of tier ${field[1] + 1} "${rest[field[1]] ?? ""}"`;
    },
    seconds: formatRetentionDuration,
  });
  return policy;
}
